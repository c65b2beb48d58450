//! `anchor scrape extract` on a saved real page of `tests/fixtures/outlets`.

use std::path::PathBuf;

use crate::util::{Run, TestDir};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/outlets")
        .join(rel)
}

#[test]
fn extract_prints_one_json_object_per_captioned_image() {
    let page = fixture("nytimes/2015-molenbeek-brussels.html");
    let dir = TestDir::new();
    let run = Run::of(
        dir.anchor()
            .args(["scrape", "extract", "--outlet", "nytimes"])
            .arg(&page),
    )
    .success();
    let lines: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // The adapter's own fixture test pins three captioned photos on this page.
    assert_eq!(lines.len(), 3, "{}", run.stdout());
    for (i, line) in lines.iter().enumerate() {
        for key in ["image_url", "caption", "credit", "alt", "position"] {
            assert!(line.get(key).is_some(), "line {i} lacks {key}: {line}");
        }
        assert!(
            line["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http")),
            "{line}"
        );
        assert!(
            line["caption"].as_str().is_some_and(|c| !c.is_empty()),
            "{line}"
        );
    }
    assert!(
        run.stderr().contains("adapter: nytimes"),
        "{}",
        run.stderr()
    );
}

#[test]
fn extract_rejects_an_unknown_outlet_as_a_user_error() {
    let dir = TestDir::new();
    let page = dir.write(
        "page.html",
        "<html><body><figure><img src=a.jpg><figcaption>x</figcaption></figure></body></html>",
    );
    let run = Run::of(
        dir.anchor()
            .args(["scrape", "extract", "--outlet", "reuters"])
            .arg(&page),
    );
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("unknown outlet"), "{}", run.stderr());
}
