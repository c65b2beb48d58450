#!/usr/bin/env bash
# Training-step throughput of anchor's candle loop vs PyTorch + diffusers on the same
# SD-shaped tiny UNet (792,964 parameters: blocks 32/64 with cross-attention, batch 2, 16x16
# latents, AdamW), CPU, side by side: full fine-tuning and LoRA rank 4 (PEFT on the PyTorch
# side), with the forward/backward/optimiser split, peak RSS and the ratios. Measured, never
# asserted.
#
#   ANCHOR_PYTHON=.venv/bin/python scripts/bench-train.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-20}"
PY="${ANCHOR_PYTHON:-.venv/bin/python}"

cargo build --release -q -p anchor-train --bin anchor-train-bench
BENCH="target/release/anchor-train-bench"

ours=$("$BENCH" --steps "$STEPS" --warmup 3)
ours_lora=$("$BENCH" --steps "$STEPS" --warmup 3 --lora 4)
if "$PY" -c "import torch, diffusers" 2>/dev/null; then
  theirs=$("$PY" pipeline/train/bench/bench_train.py --steps "$STEPS" --warmup 3)
  theirs_lora=$("$PY" pipeline/train/bench/bench_train.py --steps "$STEPS" --warmup 3 --lora 4)
else
  theirs=""
  theirs_lora=""
  echo "note: $PY lacks torch/diffusers (make python); PyTorch side skipped"
fi

"$PY" - "$ours" "$ours_lora" "$theirs" "$theirs_lora" <<'PYEOF'
import json, sys
labels = ["anchor full UNet", "anchor LoRA r4", "pytorch full UNet", "pytorch LoRA r4"]
named = {l: json.loads(a) for l, a in zip(labels, sys.argv[1:]) if a.strip()}
rows = list(named.values())
labels = list(named)
print(f"{'loop':<20} {'params':>9} {'s/step':>8} {'steps/s':>8} {'fwd s':>7} {'bwd s':>7} {'opt s':>7} {'peak MB':>8}")
for label, r in zip(labels, rows):
    print(f"{label:<20} {r['trainable_parameters']:>9} {r['s_per_step']:>8.4f} {r['steps_per_s']:>8.2f} "
          f"{r['forward_s']:>7.4f} {r['backward_s']:>7.4f} {r['optimizer_s']:>7.4f} {r['peak_rss_mb']:>8.1f}")
for kind in ("full UNet", "LoRA r4"):
    ours, theirs = named.get(f"anchor {kind}"), named.get(f"pytorch {kind}")
    if ours and theirs:
        speed = ours["steps_per_s"] / theirs["steps_per_s"]
        memory = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
        print(f"anchor/pytorch ({kind}): {speed:.2f}x steps/s (goal >= 1.0), "
              f"{memory:.2f}x peak RSS (goal <= 1.0)")
PYEOF
