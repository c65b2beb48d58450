#!/usr/bin/env bash
# The layering: anchor-cli → step crates → library crates → anchor-core.
#   - a step crate never depends on another step crate (steps meet only through tables);
#   - a library crate never depends on a step crate or the cli;
#   - anchor-core depends on no other anchor crate but the leaf anchor-digest, and not on clap;
#   - anchor-digest (the one SHA-256 helper) depends on no anchor crate;
#   - the evaluation crate never depends on the model-training crates (it scores tables).
# Prints every violation and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

steps="anchor-scrape anchor-curate anchor-split anchor-annotate anchor-sample anchor-train anchor-eval anchor-study"
libraries="anchor-core anchor-digest anchor-text anchor-plot anchor-extract anchor-imaging anchor-filters anchor-clip anchor-clip-config anchor-clip-tokenizer anchor-sd anchor-llm"
members=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))')

is_member() { [[ " $members " == *" $1 "* ]]; }
deps_of() { cargo tree -p "$1" -e normal --prefix none | sed -n 's/^\(anchor-[a-z-]*\) v.*/\1/p' | sort -u; }

status=0
violation() {
  echo "check-deps: $1" >&2
  status=1
}

for crate in $steps; do
  is_member "$crate" || continue
  for dep in $(deps_of "$crate"); do
    [ "$dep" = "$crate" ] && continue
    if [[ " $steps " == *" $dep "* ]]; then
      violation "$crate depends on step crate $dep; steps meet only through tables"
    fi
  done
done

for crate in $libraries; do
  is_member "$crate" || continue
  for dep in $(deps_of "$crate"); do
    if [[ " $steps anchor-cli " == *" $dep "* ]]; then
      violation "library crate $crate depends on $dep; libraries never import steps or the cli"
    fi
  done
done

for dep in $(deps_of anchor-core); do
  case "$dep" in anchor-core | anchor-digest) continue ;; esac
  violation "anchor-core depends on $dep; the core depends on no other anchor crate but anchor-digest"
done
for dep in $(deps_of anchor-digest); do
  [ "$dep" = anchor-digest ] && continue
  violation "anchor-digest depends on $dep; the hashing leaf depends on no anchor crate"
done
if cargo tree -p anchor-core -e normal --prefix none | grep -q "^clap v"; then
  violation "anchor-core depends on clap; argument parsing belongs to the cli"
fi

for dep in $(deps_of anchor-eval); do
  case "$dep" in
    anchor-sd | anchor-train | anchor-sample)
      violation "anchor-eval depends on $dep; evaluation never imports the model-training crates"
      ;;
  esac
done

for crate in $members; do
  [[ " $steps $libraries anchor-cli " == *" $crate "* ]] ||
    violation "$crate is neither a step, a library nor the cli: add it to scripts/check-deps.sh"
done
exit $status
