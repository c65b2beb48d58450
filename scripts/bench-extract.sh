#!/usr/bin/env bash
# Benchmark: captioned-image recall of `anchor scrape extract` against fundus
# (https://github.com/flairNLP/fundus) over the saved outlet pages in
# tests/fixtures/outlets, tune and held-out subsets, scored against the same
# expectations (pipeline/extract/tests/expected). fundus covers BBC, The
# Guardian and The Washington Post; the other outlets show anchor alone.
#
#   ANCHOR_BIN     the anchor binary (make bench passes the release build)
#   ANCHOR_PYTHON  the venv python (make bench passes .venv/bin/python)
#   BENCH_JSON     also write per-page results to this file
#
# fundus is installed into the venv on first use; it is not part of
# requirements/*.txt. Nothing but the package index is contacted.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ANCHOR_BIN="${ANCHOR_BIN:-$ROOT/target/release/anchor}"
PY="${ANCHOR_PYTHON:-$ROOT/.venv/bin/python}"

log() { printf '[bench-extract] %s\n' "$*" >&2; }

[ -x "$ANCHOR_BIN" ] || { log "no anchor binary at $ANCHOR_BIN (cargo build --release -p anchor-cli)"; exit 1; }
[ -x "$PY" ] || { log "no python at $PY (make python)"; exit 1; }

if ! "$PY" -c 'import fundus' 2>/dev/null; then
    log "installing fundus into $("$PY" -c 'import sys; print(sys.prefix)')"
    # fundus 0.5 imports a helper that curl_cffi removed in 0.14.
    "$PY" -m pip install --quiet --no-cache-dir fundus 'curl_cffi>=0.7,<0.14'
fi

args=("$ANCHOR_BIN")
if [ -n "${BENCH_JSON:-}" ]; then args+=(--json "$BENCH_JSON"); fi
"$PY" "$ROOT/scripts/bench_extract.py" "${args[@]}"
