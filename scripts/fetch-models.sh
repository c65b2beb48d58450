#!/usr/bin/env bash
# Fetch the named model files listed in data/models.tsv (all when none named).
#   scripts/fetch-models.sh nsfw smollm2
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=data/models.tsv
want=" $* "
found=0
while IFS=$'\t' read -r name spec inner sha dest; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ $# -gt 0 ] && [[ "$want" != *" $name "* ]]; then continue; fi
  found=$((found + 1))
  scripts/fetch-model.sh "$spec" "$inner" "$sha" "$dest"
done < "$manifest"
if [ $# -gt 0 ] && [ "$found" -ne $# ]; then
  echo "fetch-models: some of '$*' are not in $manifest" >&2
  exit 1
fi
