"""Reference rewards of a tiny random ImageReward, computed by the image-reward package.

Usage: image_reward_reference.py OUT_DIR IMAGE...

Builds the package's `ImageReward` class (BLIP ViT, BERT with cross-attention, MLP
head) at small width: a ViT of the package's own `VisionTransformer` with 64-wide
heads (as BLIP's ViT-L), a two-layer BERT from a `med_config.json` written here, and
a WordPiece vocabulary written here. Every parameter is drawn from a fixed seed.
Writes:

- OUT_DIR/ImageReward.pt, med_config.json, vocab.txt: the folder `anchor eval
  --image-reward` reads (the state dict saved as the package's checkpoint is);
- OUT_DIR/reference.json: the package's token ids and attention masks, the pixels of
  its transform, and `ImageReward.score(caption, path)` for every image and caption.

The package's model code (models/BLIP/{vit,med,blip_pretrain}.py, ImageReward.py)
runs unchanged. Around it: its `__init__` imports scoring modules that need other
packages, so only the model modules are loaded; `fairscale` only supplies gradient
checkpointing (off here); `init_tokenizer` downloads bert-base-uncased, so the
tokenizer is built the same way from the vocabulary written here; and the few
transformers 4 helpers that transformers 5 removed are put back as transformers 4.27
defined them.
"""

import importlib.util
import json
import os
import sys
import types

import torch

CAPTIONS = [
    "The Prime Minister speaks in London!",
    "A cat sits on the sofa.",
    "Protesters fill the square in Caf\u00e9 de la Paix, 2019 \u2014 police said the crowd of "
    "thousands marched through the city centre towards parliament late into the night",
    "fire \u20ac crowd",
]

WORDS = ["the", "a", "of", "in", "and", "on", "photo", "minister", "prime", "speaks",
         "parliament", "london", "crowd", "fire", "##s", "##ing", "##ed", "protest",
         "cat", "police", "said", "city"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")
PUNCT = list(".,'\"-:;!?()")


def import_model(package_dir):
    """Loads ImageReward.ImageReward without running the package's __init__."""
    for name, path in [("ImageReward", package_dir),
                       ("ImageReward.models", os.path.join(package_dir, "models"))]:
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
    checkpointing = types.ModuleType("fairscale.nn.checkpoint.checkpoint_activations")
    checkpointing.checkpoint_wrapper = lambda module: module
    for name in ["fairscale", "fairscale.nn", "fairscale.nn.checkpoint"]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[checkpointing.__name__] = checkpointing

    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    for name in ["apply_chunking_to_forward", "prune_linear_layer"]:
        if not hasattr(modeling_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))
    if not hasattr(modeling_utils, "find_pruneable_heads_and_indices"):
        modeling_utils.find_pruneable_heads_and_indices = None  # used only to prune heads

    import ImageReward.ImageReward as image_reward
    import ImageReward.models.BLIP.med as med

    # transformers 5's init_weights ties weights through attributes this v4-era
    # BertModel lacks; every parameter is drawn below, so initialisation is skipped.
    med.BertPreTrainedModel.init_weights = lambda self: None

    def invert_attention_mask(self, mask):
        extended = mask[:, None, :, :] if mask.dim() == 3 else mask[:, None, None, :]
        extended = extended.to(dtype=self.dtype)
        return (1.0 - extended) * torch.finfo(self.dtype).min

    def get_head_mask(self, head_mask, num_hidden_layers, is_attention_chunked=False):
        assert head_mask is None
        return [None] * num_hidden_layers

    for name, fn in [("invert_attention_mask", invert_attention_mask),
                     ("get_head_mask", get_head_mask)]:
        if not hasattr(med.BertModel, name):
            setattr(med.BertModel, name, fn)
    return image_reward


def main():
    out, images = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    spec = importlib.util.find_spec("ImageReward")
    package_dir = os.path.dirname(spec.origin)
    image_reward = import_model(package_dir)
    import ImageReward.models.BLIP.blip_pretrain as blip_pretrain
    from ImageReward.models.BLIP.vit import VisionTransformer
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + CHARS + PUNCT
    vocab += ["##" + c for c in CHARS]
    with open(f"{out}/vocab.txt", "w") as f:
        f.write("\n".join(vocab) + "\n")

    def init_tokenizer():
        # As the package's init_tokenizer, from the local vocabulary.
        tokenizer = BertTokenizer(f"{out}/vocab.txt")
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tokenizer.enc_token_id = tokenizer.convert_tokens_to_ids("[ENC]")
        return tokenizer

    def create_vit(vit, image_size, *args, **kwargs):
        width = 128
        return VisionTransformer(img_size=image_size, patch_size=16, embed_dim=width,
                                 depth=2, num_heads=width // 64), width

    blip_pretrain.init_tokenizer = init_tokenizer
    blip_pretrain.create_vit = create_vit
    config = {
        "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 48,
        "initializer_range": 0.02, "intermediate_size": 96, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 4,
        "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
        "vocab_size": len(vocab) + 2, "encoder_width": 128, "add_cross_attention": True,
    }
    with open(f"{out}/med_config.json", "w") as f:
        json.dump(config, f, indent=2)

    torch.manual_seed(0)
    model = image_reward.ImageReward(med_config=f"{out}/med_config.json", device="cpu")
    model.mlp = image_reward.MLP(config["hidden_size"])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(noise * (0.3 if p.dim() < 2 else p.shape[-1] ** -0.5))
    model.eval()
    torch.save(model.state_dict(), f"{out}/ImageReward.pt")

    tokenizer = model.blip.tokenizer
    encoded = [tokenizer(c, padding="max_length", truncation=True, max_length=35)
               for c in CAPTIONS]
    from PIL import Image
    pixels = [model.preprocess(Image.open(p)).flatten().tolist() for p in images]
    with torch.no_grad():
        scores = [[model.score(c, p) for c in CAPTIONS] for p in images]
    with open(f"{out}/reference.json", "w") as f:
        json.dump({
            "captions": CAPTIONS,
            "input_ids": [e["input_ids"] for e in encoded],
            "attention_mask": [e["attention_mask"] for e in encoded],
            "pixel_values": pixels,
            "scores": scores,
        }, f)


if __name__ == "__main__":
    main()
