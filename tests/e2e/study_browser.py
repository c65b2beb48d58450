"""Votes through the study page in headless Chromium, as a rater would.

Usage: study_browser.py URL OUT_DIR RATER STRATEGY MAX_VOTES [SCREENSHOT]

Opens URL without a rater id, enters RATER in the form, then answers pairs until the
study is done or MAX_VOTES votes are in: the first question (subjects) by keyboard
shortcuts, the second (quality) by clicking the buttons. The answers follow STRATEGY,
knowing each pair from OUT_DIR/study_pairs:

- `prefer-safe`: subjects: the `safe` image (attention checks: the right answer);
  quality: the other image.
- `careless`: attention checks: the wrong answer; otherwise `left` to both questions.

Checks on the way that the progress text and bar follow the votes, and prints one JSON
line: the answered count when the page first showed a pair, the final count, the total,
whether the page said done, and the pairs voted.
"""

import glob
import json
import sys
import tempfile

import pyarrow.parquet as pq
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

KEY = {"left": "a", "equal": "s", "right": "d"}
ARROW = {"left": Keys.ARROW_LEFT, "equal": Keys.ARROW_DOWN, "right": Keys.ARROW_RIGHT}


def load_pairs(out):
    rows = {}
    for path in sorted(glob.glob(f"{out}/study_pairs/part-*.parquet")):
        table = pq.read_table(path, columns=[
            "pair_id", "kind", "left_configuration", "right_configuration", "expected"])
        for row in table.to_pylist():
            rows[row["pair_id"]] = row
    if not rows:
        raise SystemExit(f"no study_pairs under {out}")
    return rows


def answers(pair, strategy):
    if pair["kind"] == "attention":
        right = pair["expected"]
        wrong = "left" if right == "right" else "right"
        return (right if strategy == "prefer-safe" else wrong), "equal"
    if strategy == "careless":
        return "left", "left"
    safe_side = "left" if pair["left_configuration"] == "safe" else "right"
    other_side = "right" if safe_side == "left" else "left"
    return safe_side, other_side


def driver():
    options = webdriver.ChromeOptions()
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='anchor-study-chromium-')}"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    url, out, rater, strategy, max_votes = sys.argv[1:6]
    screenshot = sys.argv[6] if len(sys.argv) > 6 else None
    max_votes = int(max_votes)
    pairs = load_pairs(out)
    browser = driver()
    wait = WebDriverWait(browser, 20)
    body = lambda: browser.find_element(By.TAG_NAME, "body")  # noqa: E731
    try:
        browser.get(url)
        field = wait.until(lambda d: d.find_element(By.ID, "rater-input"))
        assert field.is_displayed(), "the page asks for a rater id first"
        field.send_keys(rater)
        field.send_keys(Keys.RETURN)
        wait.until(lambda d: body().get_attribute("data-total"))
        first_answered = int(body().get_attribute("data-answered"))
        total = int(body().get_attribute("data-total"))
        voted = []
        use_arrows = False
        while body().get_attribute("data-pair") and len(voted) < max_votes:
            pair_id = body().get_attribute("data-pair")
            answered = int(body().get_attribute("data-answered"))
            progress = browser.find_element(By.ID, "progress-text").text
            assert progress == f"{answered} / {total}", progress
            bar = browser.find_element(By.ID, "progress")
            assert int(bar.get_attribute("value")) == answered
            caption = browser.find_element(By.ID, "caption").text
            assert caption, "the caption is shown"
            for side in ("left", "right"):
                img = browser.find_element(By.ID, side)
                wait.until(lambda d, i=img: d.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", i))
            if screenshot and not voted:
                browser.save_screenshot(screenshot)
            subjects, quality = answers(pairs[pair_id], strategy)
            assert body().get_attribute("data-question") == "subjects"
            # Letters and arrows in turn: both shortcut sets are exercised.
            keys = ARROW if use_arrows else KEY
            use_arrows = not use_arrows
            body().send_keys(keys[subjects])
            wait.until(lambda d: body().get_attribute("data-question") == "quality")
            browser.find_element(By.ID, f"choose-{quality}").click()
            wait.until(lambda d, n=answered: int(body().get_attribute("data-answered")) == n + 1)
            voted.append(pair_id)
        done = not browser.find_element(By.ID, "done").get_attribute("hidden")
        print(json.dumps({
            "first_answered": first_answered,
            "answered": int(body().get_attribute("data-answered")),
            "total": total,
            "done": done,
            "voted": voted,
        }))
    finally:
        browser.quit()


if __name__ == "__main__":
    main()
