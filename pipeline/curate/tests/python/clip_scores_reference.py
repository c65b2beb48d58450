"""Reference CLIP scores of a tiny random transformers CLIPModel.

Usage: clip_scores_reference.py OUT_DIR VOCAB_GZ IMAGE...

Builds CLIPModel(CLIPConfig(...)) with a fixed seed and save_pretrained()s it into OUT_DIR
with a tokenizer (vocab.json/merges.txt from open_clip's BPE file, as anchor-clip's own
parity script does) and the PIL image processor's preprocessor_config.json. Then writes
OUT_DIR/reference.json with, per image:

- clip_iqa: torchmetrics.functional.multimodal.clip_image_quality_assessment with its
  default prompts ("quality": "Good photo." / "Bad photo."), called as its docstring example
  does: float pixels in 0..255 with the default data_range=1.0.
- clip_similarity: the cosine of CLIPModel.get_image_features and get_text_features for the
  image and its caption (CLIPTokenizer, 77 tokens, truncated).

torchmetrics 1.9 loads the model itself from a name containing "openai"; its loader is
replaced by one returning the same model and a CLIPProcessor built from the folder, because
(1) transformers 5 returns model outputs, not tensors, from get_*_features, which torchmetrics
1.9 does not unwrap, and (2) the image processor must be the PIL one that anchor-clip mirrors
(transformers 5's default runs on torchvision, whose resampling differs slightly).
"""

import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../clip/tests/python"))
from clip_reference import ImageProcessor, write_vocab  # noqa: E402

import torchmetrics.functional.multimodal.clip_iqa as tm_clip_iqa  # noqa: E402

CAPTIONS = [
    "Chancellor Angela Merkel arrives for talks in Brussels",
    "A cat sits on a sofa.",
    "Flooding in Valencia, Spain, on Wednesday; rescue teams worked through the night "
    "to reach residents trapped on the upper floors of buildings along the river, "
    "officials said, as the death toll rose again after a second night of storms.",
    "Coffee is served at a cafe (Photo: AP)",
]


class Features(CLIPModel):
    """CLIPModel whose get_*_features return tensors on transformers 4 and 5 alike."""

    def get_text_features(self, *args, **kwargs):
        out = super().get_text_features(*args, **kwargs)
        return out if torch.is_tensor(out) else out.pooler_output

    def get_image_features(self, *args, **kwargs):
        out = super().get_image_features(*args, **kwargs)
        return out if torch.is_tensor(out) else out.pooler_output


def main():
    out, vocab_gz, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            patch_size=32,
            hidden_act="quick_gelu",
        ),
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    with torch.no_grad():
        # Perturb every parameter (layer norms start at 1/0) so each one shows in the scores.
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out, safe_serialization=True)
    write_vocab(out, vocab_gz)
    tok = CLIPTokenizer(f"{out}/vocab.json", f"{out}/merges.txt")
    tok.save_pretrained(out)
    image_processor = ImageProcessor()
    image_processor.save_pretrained(out)

    model = Features.from_pretrained(out).eval()
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tok)
    tm_clip_iqa._get_clip_iqa_model_and_processor = lambda _name: (model, processor)

    pil = [Image.open(p).convert("RGB") for p in images]
    iqa = []
    for im in pil:
        pixels = torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None]
        score = tm_clip_iqa.clip_image_quality_assessment(pixels, model_name_or_path=out)
        iqa.append(float(score))

    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(len(pil))]
    enc = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    pixels = image_processor(images=pil, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels)
        txt = model.get_text_features(input_ids=enc["input_ids"])
    sim = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    with open(f"{out}/reference.json", "w") as f:
        json.dump(
            {"captions": captions, "clip_iqa": iqa, "clip_similarity": sim.tolist()}, f
        )


if __name__ == "__main__":
    main()
