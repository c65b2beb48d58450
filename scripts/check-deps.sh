#!/usr/bin/env bash
# Steps meet only through tables: no step crate may depend on another step
# crate. Library crates (anchor-core, anchor-extract, anchor-imaging, anchor-clip-tokenizer,
# anchor-clip, anchor-filters's algorithms, anchor-sd's networks) are allowed; the cli
# depends on everything.
set -euo pipefail
steps="anchor-scrape anchor-curate anchor-split anchor-annotate anchor-sample anchor-train anchor-eval"
status=0
for crate in $steps; do
  cargo metadata --format-version 1 --no-deps >/dev/null
  if ! cargo tree -p "$crate" -e normal --prefix none >/dev/null 2>&1; then
    continue  # crate not in this workspace (yet)
  fi
  for other in $steps; do
    [ "$other" = "$crate" ] && continue
    if cargo tree -p "$crate" -e normal --prefix none | grep -q "^$other v"; then
      echo "check-deps: $crate depends on step crate $other; steps must meet only through tables" >&2
      status=1
    fi
  done
done
if cargo tree -p anchor-core -e normal --prefix none | grep -E "^anchor-(scrape|curate|curate-steps|split|annotate|safe|sample|train|eval|cli) v"; then
  echo "check-deps: anchor-core must not depend on any step or the cli" >&2
  status=1
fi
if cargo tree -p anchor-core -e normal --prefix none | grep -q "^clap v"; then
  echo "check-deps: anchor-core must not depend on clap" >&2
  status=1
fi
exit $status
