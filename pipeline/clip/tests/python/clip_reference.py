"""Reference embeddings of a tiny random transformers CLIPModel.

Usage: clip_reference.py OUT_DIR VOCAB_GZ IMAGE...

Builds CLIPModel(CLIPConfig(...)) with a fixed seed, save_pretrained()s it into
OUT_DIR, writes vocab.json/merges.txt built from open_clip's BPE file (as open_clip
and OpenAI CLIP build their vocabulary), and writes OUT_DIR/reference.json with the
token ids, pixel values and embeddings transformers computes for the images and
captions. The Rust parity test loads the same folder and compares.
"""

import gzip
import json
import sys

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

try:
    # transformers 5: the default CLIPImageProcessor runs on torchvision; the PIL
    # backend is the one whose pixels `anchor-clip` reproduces.
    from transformers.models.clip.image_processing_pil_clip import (
        CLIPImageProcessorPil as ImageProcessor,
    )
except ImportError:
    # transformers 4: CLIPImageProcessor itself resizes with PIL.
    from transformers import CLIPImageProcessor as ImageProcessor

CAPTIONS = [
    "Chancellor Angela Merkel arrives for talks in Brussels",
    "A cat sits on a sofa.",
    "Flooding in Valencia, Spain, on Wednesday; rescue teams worked through the night "
    "to reach residents trapped on the upper floors of buildings along the river, "
    "officials said, as the death toll rose again.",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_vocab(out, vocab_gz):
    lines = gzip.open(vocab_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(f"{out}/vocab.json", "w") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f)
    with open(f"{out}/merges.txt", "w") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


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
        # Random init leaves layer norms at 1/0 and embeddings small; perturb every
        # parameter so each one shows in the outputs.
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out, safe_serialization=True)
    write_vocab(out, vocab_gz)

    tok = CLIPTokenizer(f"{out}/vocab.json", f"{out}/merges.txt")
    enc = tok(CAPTIONS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    processor = ImageProcessor()
    pil = [Image.open(p) for p in images]
    pixels = processor(images=pil, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels)
        txt = model.get_text_features(input_ids=enc["input_ids"])
    if not torch.is_tensor(img):
        img = img.pooler_output
    if not torch.is_tensor(txt):
        txt = txt.pooler_output
    ref = {
        "captions": CAPTIONS,
        "input_ids": enc["input_ids"].tolist(),
        "pixel_values": pixels.numpy().astype(np.float64).reshape(len(images), -1).tolist(),
        "image_embeddings": img.numpy().astype(np.float64).tolist(),
        "text_embeddings": txt.numpy().astype(np.float64).tolist(),
    }
    with open(f"{out}/reference.json", "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
