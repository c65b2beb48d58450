#!/usr/bin/env bash
# Training-step throughput of anchor's candle loop vs PyTorch + diffusers on the same
# SD-shaped tiny UNet (1.06M parameters: blocks 32/64 with cross-attention, batch 2, 16x16
# latents, AdamW), CPU, side by side with the ratio. Measured, never asserted.
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
else
  theirs=""
  echo "note: $PY lacks torch/diffusers (make python); PyTorch side skipped"
fi

"$PY" - "$ours" "$ours_lora" "$theirs" <<'PYEOF'
import json, sys
rows = [json.loads(a) for a in sys.argv[1:] if a.strip()]
labels = ["anchor full UNet", "anchor LoRA r4", "pytorch full UNet"]
print(f"{'loop':<20} {'params':>9} {'s/step':>8} {'steps/s':>8} {'fwd s':>7} {'bwd s':>7} {'opt s':>7} {'peak MB':>8}")
for label, r in zip(labels, rows):
    print(f"{label:<20} {r['trainable_parameters']:>9} {r['s_per_step']:>8.4f} {r['steps_per_s']:>8.2f} "
          f"{r['forward_s']:>7.4f} {r['backward_s']:>7.4f} {r['optimizer_s']:>7.4f} {r['peak_rss_mb']:>8.1f}")
if len(rows) == 3:
    ratio = rows[2]["steps_per_s"] / rows[0]["steps_per_s"]
    print(f"pytorch/anchor steps/s ratio (full UNet): {ratio:.2f}x "
          f"({'anchor slower' if ratio > 1 else 'anchor faster or equal'})")
PYEOF
