#!/usr/bin/env python3
"""Captioned-image recall of `anchor scrape extract` and of fundus over the saved outlet pages.

Reads tests/fixtures/outlets/SOURCES.tsv (pages and their tune/heldout split) and the
expectations in pipeline/extract/tests/expected/<outlet>/<page>.json, runs both extractors over
every page and prints recall (matched expected images / expected images) per outlet and subset,
side by side. fundus covers BBC, The Guardian and The Washington Post; its column is blank for
the other outlets.

An extracted image matches an expected one when it is the same picture (the expected URL, a
URL fragment the expectation requires, or the same file stem: renditions differ in folder and
query) or carries the same caption (equal after whitespace and case folding, or the expected
caption followed by a credit). Each extracted image matches at most once. Only images with a
caption count: a captionless image is no dataset pair.

Usage: bench_extract.py ANCHOR_BIN [--json OUT]
"""

import argparse
import csv
import datetime
import json
import re
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "outlets"
EXPECTED = ROOT / "pipeline" / "extract" / "tests" / "expected"

# Outlet name of this project -> (fundus region, publisher attribute).
FUNDUS_PUBLISHERS = {
    "bbc": ("uk", "BBC"),
    "guardian": ("uk", "TheGuardian"),
    "washingtonpost": ("us", "WashingtonPost"),
}


def file_stem(url):
    path = re.split(r"[?#]", url, maxsplit=1)[0]
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0].lower()


def norm(s):
    return " ".join((s or "").split()).lower()


def matches(want, have):
    """Whether extracted image `have` ({url, caption}) is expected image `want`."""
    want_url = want.get("image_url") or want.get("image_url_contains")
    url = have["url"]
    if want_url and (url == want_url or want_url in url or file_stem(want_url) == file_stem(url)):
        return True
    wc, hc = norm(want.get("caption")), norm(have["caption"])
    return bool(wc) and (hc == wc or hc.startswith(wc + " "))


def recall_counts(expected, got):
    used = [False] * len(got)
    hit = 0
    for w in expected:
        for j, h in enumerate(got):
            if not used[j] and matches(w, h):
                used[j] = True
                hit += 1
                break
    return hit, len(expected)


def anchor_images(anchor_bin, outlet, page, url):
    out = subprocess.run(
        [anchor_bin, "scrape", "extract", "--outlet", outlet, "--url", url, str(page)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    images = []
    for line in out.splitlines():
        line = line.strip()
        if line:
            rec = json.loads(line)
            if rec.get("caption"):
                images.append({"url": rec["image_url"], "caption": rec["caption"]})
    return images


def fundus_images(outlet, html, year):
    """fundus' Article.images (caption empty when it has none), or None when fundus has no
    such publisher."""
    if outlet not in FUNDUS_PUBLISHERS:
        return None
    from fundus import PublisherCollection

    region, name = FUNDUS_PUBLISHERS[outlet]
    publisher = getattr(getattr(PublisherCollection, region), name)
    crawl_date = datetime.datetime(int(year), 12, 31)
    try:
        parser = publisher.parser(crawl_date)
    except (ValueError, KeyError, AttributeError):
        # A page older than fundus' oldest parser version: use the oldest one there is.
        parser = publisher.parser(datetime.datetime(2100, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extraction = parser.parse(html, error_handling="suppress")
    found = extraction.get("images")
    if not isinstance(found, list):
        # An attribute fundus failed on comes back as its exception (or not at all).
        found = []
    return [{"url": img.url, "caption": img.caption or ""} for img in found]


def load_sources():
    with open(FIXTURES / "SOURCES.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("anchor_bin")
    ap.add_argument("--json", help="write per-page results here")
    args = ap.parse_args()

    tally = defaultdict(lambda: {"anchor": [0, 0], "fundus": [0, 0], "fundus_any": [0, 0], "pages": 0})
    per_page = []
    for row in load_sources():
        page_file = FIXTURES / row["file"]
        exp_file = EXPECTED / (row["file"][: -len(".html")] + ".json")
        exp = json.loads(exp_file.read_text(encoding="utf-8"))
        expected = exp.get("images") or []
        outlet, subset = row["outlet"], row["split"]
        got = anchor_images(args.anchor_bin, outlet, page_file, exp["url"])
        a_hit, n = recall_counts(expected, got)
        html = page_file.read_bytes().decode("utf-8", errors="replace")
        fundus_all = fundus_images(outlet, html, row["year"])
        t = tally[(subset, outlet)]
        t["pages"] += 1
        t["anchor"][0] += a_hit
        t["anchor"][1] += n
        rec = {"page": row["file"], "split": subset, "expected": n, "anchor": a_hit}
        if fundus_all is not None:
            captioned = [i for i in fundus_all if i["caption"]]
            f_hit, _ = recall_counts(expected, captioned)
            # The same pictures found at all, caption or not (matched on the URL alone).
            any_hit, _ = recall_counts([{**w, "caption": ""} for w in expected], fundus_all)
            t["fundus"][0] += f_hit
            t["fundus"][1] += n
            t["fundus_any"][0] += any_hit
            t["fundus_any"][1] += n
            rec["fundus"] = f_hit
            rec["fundus_any_image"] = any_hit
        per_page.append(rec)

    def fmt(pair):
        hit, n = pair
        if n == 0:
            return f"{'-':>13}"
        return f"{hit:>3}/{n:<3} {hit / n:.3f}"

    print("captioned-image recall (matched / expected); fundus-any: fundus images matched on URL alone")
    print(f"{'subset':<8} {'outlet':<15} {'pages':>5}  {'anchor':>13}  {'fundus':>13}  {'fundus-any':>13}")
    keys = ("anchor", "fundus", "fundus_any", "anchor_on_fundus")
    totals = defaultdict(lambda: {**{k: [0, 0] for k in keys}, "pages": 0})
    for (subset, outlet), t in sorted(tally.items()):
        print(
            f"{subset:<8} {outlet:<15} {t['pages']:>5}  {fmt(t['anchor'])}  {fmt(t['fundus'])}  {fmt(t['fundus_any'])}"
        )
        s = totals[subset]
        s["pages"] += t["pages"]
        for k in ("anchor", "fundus", "fundus_any"):
            s[k][0] += t[k][0]
            s[k][1] += t[k][1]
        if outlet in FUNDUS_PUBLISHERS:
            s["anchor_on_fundus"][0] += t["anchor"][0]
            s["anchor_on_fundus"][1] += t["anchor"][1]
    for subset, s in sorted(totals.items()):
        print(f"{subset:<8} {'all outlets':<15} {s['pages']:>5}  {fmt(s['anchor'])}")
        print(
            f"{subset:<8} {'fundus outlets':<15} {'':>5}  {fmt(s['anchor_on_fundus'])}  {fmt(s['fundus'])}  {fmt(s['fundus_any'])}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(per_page, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
