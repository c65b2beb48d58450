#!/usr/bin/env python3
"""Builds labelled.jsonl from labelled.src.txt and checks every subject is a word-bounded
span of its caption (the Rust loader checks it again).

Lines before the first `@real` header are captions written for the project (`source`
`written`); each `@real SPLIT PAGE` header starts the real captions of one saved outlet page
(`source` `real`, `split` `tune` or `heldout`). A subject prefixed with `*` is the caption's
main subject (at most one per caption; every real caption has one)."""
import json
import pathlib
import sys

KINDS = {"P": "person", "O": "organisation", "L": "place", "T": "object", "E": "event", "X": "other"}
here = pathlib.Path(__file__).parent


def is_span(caption: str, text: str) -> bool:
    start = caption.find(text)
    while start != -1:
        end = start + len(text)
        before = caption[start - 1] if start > 0 else " "
        after = caption[end] if end < len(caption) else " "
        if caption[start].isalnum() and not before.isalnum() and caption[end - 1].isalnum() and not after.isalnum():
            return True
        start = caption.find(text, start + 1)
    return False


rows = []
section = None  # None = written; else (split, page)
for n, line in enumerate((here / "labelled.src.txt").read_text().splitlines(), 1):
    if not line.strip() or line.startswith("#"):
        continue
    if line.startswith("@"):
        parts = line[1:].split()
        if len(parts) != 3 or parts[0] != "real" or parts[1] not in ("tune", "heldout"):
            sys.exit(f"line {n}: expected '@real tune|heldout PAGE', got {line!r}")
        section = (parts[1], parts[2])
        continue
    subset, caption, subjects = (p.strip() for p in line.split(" | "))
    subs = []
    main = None
    for item in subjects.split(";"):
        text, kind = item.strip().rsplit(":", 1)
        if text.startswith("*"):
            if main is not None:
                sys.exit(f"line {n}: two main subjects")
            text = text[1:]
            main = text
        if not is_span(caption, text):
            sys.exit(f"line {n}: {text!r} is not a span of {caption!r}")
        subs.append({"text": text, "kind": KINDS[kind]})
    row = {
        "subset": {"E": "entity", "N": "non_entity"}[subset],
        "caption": caption,
        "subjects": subs,
    }
    if section is None:
        row = {"id": f"lab-{sum(r['source'] == 'written' for r in rows) + 1:03d}", "source": "written", **row}
    else:
        if main is None:
            sys.exit(f"line {n}: a real caption needs a main subject (*)")
        row = {
            "id": f"real-{sum(r['source'] == 'real' for r in rows) + 1:03d}",
            "source": "real",
            "page": section[1],
            "split": section[0],
            **row,
        }
    if main is not None:
        row["main"] = main
    rows.append(row)
with open(here / "labelled.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
real = [r for r in rows if r["source"] == "real"]
print(
    f"{len(rows)} captions, {sum(r['subset'] == 'entity' for r in rows)} entity; "
    f"{len(real)} real ({sum(r['split'] == 'heldout' for r in real)} heldout)"
)
