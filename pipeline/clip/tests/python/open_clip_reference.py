"""Reference embeddings and HPSv2 scores of a tiny random open_clip CLIP.

Usage: open_clip_reference.py OUT_DIR IMAGE...

Builds open_clip.CLIP from a small model config of the ViT-H-14 kind (exact GELU,
head width other than 64) with a fixed seed, perturbs every parameter, and writes:

- OUT_DIR/hub/: open_clip_config.json and open_clip_model.safetensors (the layout
  open_clip pushes to a model hub);
- OUT_DIR/checkpoint.pt: {"state_dict": ...} in half precision, as HPSv2's
  HPS_v2_compressed.pt is stored;
- OUT_DIR/reference.json: open_clip's token ids, evaluation-transform pixels,
  encode_image / encode_text outputs (of the float32 weights and of the
  half-precision checkpoint loaded back as float32), and the HPSv2 scores
  (normalised image and text features, their dot product per image/caption pair).
"""

import json
import os
import sys

import numpy as np
import open_clip
import torch
from open_clip.transform import image_transform
from PIL import Image
from safetensors.torch import save_file

CAPTIONS = [
    "Chancellor Angela Merkel arrives for talks in Brussels",
    "A cat sits on a sofa.",
    "Flooding in Valencia, Spain, on Wednesday; rescue teams worked through the night "
    "to reach residents trapped on the upper floors of buildings along the river, "
    "officials said, as the death toll rose again.",
    "Ukraine\u2019s president, Volodymyr Zelenskyy, in Kyiv",
]

CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 40, "head_width": 10, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


def features(model, pixels, tokens):
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(tokens)
    return img, txt


def main():
    out, images = sys.argv[1], sys.argv[2:]
    torch.manual_seed(0)
    model = open_clip.CLIP(**CONFIG).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    hub = f"{out}/hub"
    os.makedirs(hub, exist_ok=True)
    save_file(state, f"{hub}/open_clip_model.safetensors")
    with open(f"{hub}/open_clip_config.json", "w") as f:
        json.dump({"model_cfg": CONFIG, "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}}, f)
    half = {k: v.half() for k, v in state.items()}
    torch.save({"state_dict": half, "epoch": 1}, f"{out}/checkpoint.pt")

    preprocess = image_transform(CONFIG["vision_cfg"]["image_size"], is_train=False)
    pixels = torch.stack([preprocess(Image.open(p)) for p in images])
    tokens = open_clip.tokenize(CAPTIONS)
    img, txt = features(model, pixels, tokens)

    model_half = open_clip.CLIP(**CONFIG).eval()
    model_half.load_state_dict({k: v.float() for k, v in half.items()})
    img_h, txt_h = features(model_half, pixels, tokens)

    # HPSv2 (hpsv2.img_score): normalised features, logits_per_image = image @ text.T,
    # the score of image i and prompt i is the diagonal.
    n = min(len(images), len(CAPTIONS))
    i_n = torch.nn.functional.normalize(img[:n], dim=-1)
    t_n = torch.nn.functional.normalize(txt[:n], dim=-1)
    hps = torch.diagonal(i_n @ t_n.T)

    f64 = lambda t: t.numpy().astype(np.float64).tolist()
    ref = {
        "captions": CAPTIONS,
        "input_ids": tokens.tolist(),
        "pixel_values": f64(pixels.reshape(len(images), -1)),
        "image_embeddings": f64(img),
        "text_embeddings": f64(txt),
        "half_image_embeddings": f64(img_h),
        "half_text_embeddings": f64(txt_h),
        "hps": f64(hps),
    }
    with open(f"{out}/reference.json", "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
