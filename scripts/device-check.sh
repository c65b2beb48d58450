#!/usr/bin/env bash
# Checks anchor's CUDA build on one GPU in a single run (a few minutes on an H100 or H200):
#   1. parity: each network (UNet forward, UNet LoRA gradients, VAE, CLIP text encoder,
#      cross-attention) on the GPU against the CPU, f32, tolerance 1e-3 of the output's scale;
#   2. training: one Stable Diffusion 1.5-shaped UNet LoRA (rank 4) step at 512 px (64x64
#      latents), batch 1, in f16 and in bf16;
#   3. sampling: 4 captions through the guided DDIM loop (20 steps, 512 px, f16), then the
#      VAE decode;
#   4. the same training steps and sampling with PyTorch + diffusers, and anchor/diffusers
#      ratios (goal >= 1.0 for both).
#
# Build here, on any machine with the Rust toolchain (no GPU needed):
#
#     scripts/device-check.sh build
#
# writes dist/gpu/anchor-train-bench.xz (the CUDA benchmark of scripts/build-gpu-bench.sh,
# compressed) and dist/gpu/wheels/ (diffusers and what it needs beyond PyTorch's own
# packages). Copy the repository with those two to the GPU machine and run there:
#
#     scripts/device-check.sh [OUT_DIR]
#
# It needs a python3 with PyTorch and its CUDA libraries (the nvidia-* wheels) and no
# network. Results go to OUT_DIR (default device-check/): parity.jsonl, train.jsonl,
# sample.jsonl and summary.txt. The exit status is 1 if a module fails parity.
set -uo pipefail
cd "$(dirname "$0")/.."
GPU=dist/gpu
BENCH="$GPU/anchor-train-bench"
WHEELS="$GPU/wheels"

if [ "${1:-}" = build ]; then
    set -e
    scripts/build-gpu-bench.sh
    xz -T0 -9 -k -f "$BENCH"
    mkdir -p "$WHEELS"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux2014_x86_64 --platform any \
        -d "$WHEELS" "diffusers==0.42.*" importlib_metadata
    ls -l "$BENCH.xz" "$WHEELS"
    exit 0
fi

OUT="${1:-device-check}"
mkdir -p "$OUT"
PY="${ANCHOR_DEVICE_PYTHON:-python3}"
if [ ! -x "$BENCH" ]; then
    if [ ! -f "$BENCH.xz" ]; then
        echo "device-check: $BENCH.xz is missing: run scripts/device-check.sh build first" >&2
        exit 2
    fi
    "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$BENCH.xz" "$BENCH"
    chmod +x "$BENCH"
fi
# candle links cuBLAS, cuRAND and the runtime dynamically: take PyTorch's.
NVIDIA_LIB=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
export LD_LIBRARY_PATH="$NVIDIA_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$PY" -c 'import diffusers' 2>/dev/null && [ -d "$WHEELS" ]; then
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --target /tmp/anchor-site \
        "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/anchor-site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

status=0
echo "== 1. parity (GPU against CPU)"
"$BENCH" --parity | tee "$OUT/parity.jsonl" || status=1

echo "== 2. training: SD 1.5 UNet, LoRA r4, 512 px, batch 1"
: > "$OUT/train.jsonl"
for dtype in f16 bf16; do
    "$BENCH" --sd15 --latent 64 --batch 1 --lora 4 "--$dtype" --steps 20 --warmup 3 \
        | tee -a "$OUT/train.jsonl"
    "$PY" pipeline/train/bench/bench_train.py --sd15 --latent 64 --batch 1 --lora 4 \
        --dtype "$dtype" --device cuda --steps 20 --warmup 3 2>/dev/null | tee -a "$OUT/train.jsonl"
done

echo "== 3. sampling: 4 captions, DDIM 20 steps, guidance 7.5, 512 px, f16"
: > "$OUT/sample.jsonl"
"$BENCH" --sample --sd15 --f16 --batch 4 --steps 20 --runs 2 | tee -a "$OUT/sample.jsonl"
"$PY" pipeline/sample/bench/bench_sample.py --sd15 --batch 4 --steps 20 --runs 2 \
    --dtype f16 --device cuda 2>/dev/null | tee -a "$OUT/sample.jsonl"

echo "== 4. anchor / diffusers"
"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/summary.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def rows(name):
    return [json.loads(l) for l in (out / name).read_text().splitlines() if l.strip()]
for m in rows("parity.jsonl"):
    print(f"parity {m['module']:<20} max |diff| {m['max_abs_diff']:.3g} "
          f"(relative {m['relative']:.3g}, tolerance {m['tolerance']}) "
          f"{'ok' if m['passes'] else 'FAILED'}")
train = rows("train.jsonl")
for dtype in ("f16", "bf16"):
    ours = [r for r in train if r["impl"].startswith("anchor") and r["dtype"].lower() == dtype]
    theirs = [r for r in train if not r["impl"].startswith("anchor") and r["dtype"] == dtype]
    if ours and theirs:
        o, t = ours[0]["steps_per_s"], theirs[0]["steps_per_s"]
        print(f"train LoRA r4 {dtype}: anchor {o:.2f} steps/s, diffusers {t:.2f} steps/s, "
              f"ratio {o / t:.2f}x (goal >= 1.0)")
sample = rows("sample.jsonl")
ours = [r for r in sample if r["impl"].startswith("anchor")]
theirs = [r for r in sample if not r["impl"].startswith("anchor")]
if ours and theirs:
    o, t = ours[0]["images_per_s"], theirs[0]["images_per_s"]
    print(f"sample f16: anchor {o:.2f} images/s, diffusers {t:.2f} images/s, "
          f"ratio {o / t:.2f}x (goal >= 1.0)")
PYEOF
exit "$status"
