#!/usr/bin/env python3
"""Builds labelled.jsonl from labelled.src.txt and checks every subject is a word-bounded
span of its caption (the Rust loader checks it again)."""
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
for n, line in enumerate((here / "labelled.src.txt").read_text().splitlines(), 1):
    if not line.strip() or line.startswith("#"):
        continue
    subset, caption, subjects = (p.strip() for p in line.split(" | "))
    subs = []
    for item in subjects.split(";"):
        text, kind = item.strip().rsplit(":", 1)
        if not is_span(caption, text):
            sys.exit(f"line {n}: {text!r} is not a span of {caption!r}")
        subs.append({"text": text, "kind": KINDS[kind]})
    rows.append({
        "id": f"lab-{len(rows) + 1:03d}",
        "subset": {"E": "entity", "N": "non_entity"}[subset],
        "caption": caption,
        "subjects": subs,
    })
with open(here / "labelled.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"{len(rows)} captions, {sum(r['subset'] == 'entity' for r in rows)} entity")
