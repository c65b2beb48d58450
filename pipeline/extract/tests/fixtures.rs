//! Runs every adapter over every saved real outlet page and checks what it finds against
//! the expectations in `tests/expected/<outlet>/<page>.json`, written by reading each page.
//!
//! The pages live outside the repository (`../shared/fixtures/outlets`, or `$ANCHOR_FIXTURES`);
//! without them the tests print a message and pass.

use std::path::{Path, PathBuf};

use anchor_extract::{Outlet, extract};
use serde_json::Value;

fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ANCHOR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/outlets")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: saved outlet pages not found at {} (set ANCHOR_FIXTURES)",
            dir.display()
        );
        None
    }
}

fn expected_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected");
    let mut out = Vec::new();
    for outlet in std::fs::read_dir(&root).expect("tests/expected exists") {
        let outlet = outlet.expect("readable dir entry").path();
        if !outlet.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&outlet).expect("readable outlet dir") {
            let f = f.expect("readable dir entry").path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Checks one page; returns the mismatches found.
fn check_page(fixtures: &Path, expected_path: &Path) -> Vec<String> {
    let raw = std::fs::read_to_string(expected_path).expect("expected file readable");
    let exp: Value = serde_json::from_str(&raw).expect("expected file is JSON");
    let page = str_field(&exp, "page").expect("expected file names its page");
    let outlet: Outlet = str_field(&exp, "outlet")
        .expect("expected file names its outlet")
        .parse()
        .expect("known outlet");
    let url = url::Url::parse(str_field(&exp, "url").expect("expected file gives a url"))
        .expect("valid url");
    let bytes = std::fs::read(fixtures.join(page)).expect("fixture page readable");
    let html = String::from_utf8_lossy(&bytes);
    let got = extract(Some(outlet), &url, &html);

    let mut errs = Vec::new();
    fn check(
        errs: &mut Vec<String>,
        page: &str,
        what: String,
        want: Option<&str>,
        have: Option<&str>,
    ) {
        if want != have {
            errs.push(format!("{page}: {what}: expected {want:?}, got {have:?}"));
        }
    }
    if let Some(a) = str_field(&exp, "adapter") {
        check(
            &mut errs,
            page,
            "adapter".into(),
            Some(a),
            Some(&got.adapter),
        );
    }
    if let Some(meta) = exp.get("article") {
        for (key, have) in [
            ("canonical_url", got.article.canonical_url.as_deref()),
            ("headline", got.article.headline.as_deref()),
            ("published_at", got.article.published_at.as_deref()),
            ("section", got.article.section.as_deref()),
        ] {
            if let Some(want) = meta.get(key) {
                check(
                    &mut errs,
                    page,
                    format!("article.{key}"),
                    want.as_str(),
                    have,
                );
            }
        }
        if let Some(want) = meta.get("authors").and_then(Value::as_array) {
            let want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
            let have: Vec<&str> = got.article.authors.iter().map(String::as_str).collect();
            if want != have {
                errs.push(format!("{page}: authors: expected {want:?}, got {have:?}"));
            }
        }
    }
    let want_images = exp
        .get("images")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if want_images.len() != got.images.len() {
        errs.push(format!(
            "{page}: expected {} images, got {}: {:#?}",
            want_images.len(),
            got.images.len(),
            got.images
                .iter()
                .map(|i| (&i.caption, &i.credit, &i.image_url))
                .collect::<Vec<_>>()
        ));
        return errs;
    }
    for (i, (want, have)) in want_images.iter().zip(&got.images).enumerate() {
        check(
            &mut errs,
            page,
            format!("image {i} caption"),
            str_field(want, "caption"),
            Some(&have.caption),
        );
        check(
            &mut errs,
            page,
            format!("image {i} credit"),
            str_field(want, "credit"),
            have.credit.as_deref(),
        );
        if let Some(alt) = want.get("alt") {
            check(
                &mut errs,
                page,
                format!("image {i} alt"),
                alt.as_str(),
                have.alt.as_deref(),
            );
        }
        if let Some(u) = str_field(want, "image_url") {
            check(
                &mut errs,
                page,
                format!("image {i} url"),
                Some(u),
                Some(&have.image_url),
            );
        }
        if let Some(part) = str_field(want, "image_url_contains")
            && !have.image_url.contains(part)
        {
            errs.push(format!(
                "{page}: image {i} url {:?} lacks {part:?}",
                have.image_url
            ));
        }
        let lead = want
            .get("is_lead")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if lead != have.is_lead {
            errs.push(format!(
                "{page}: image {i} is_lead: expected {lead}, got {}",
                have.is_lead
            ));
        }
        if have.position as usize != i {
            errs.push(format!("{page}: image {i} has position {}", have.position));
        }
        if !have.image_url.starts_with("http") {
            errs.push(format!(
                "{page}: image {i} url not absolute: {}",
                have.image_url
            ));
        }
    }
    errs
}

#[test]
fn every_saved_page_matches_its_expectations() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let files = expected_files();
    assert!(!files.is_empty(), "no expectations under tests/expected");
    let errs: Vec<String> = files
        .iter()
        .flat_map(|f| check_page(&fixtures, f))
        .collect();
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// Every saved page has an expectation file, so a new fixture cannot go unchecked.
#[test]
fn every_saved_page_has_expectations() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let expected = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected");
    let mut missing = Vec::new();
    for outlet in Outlet::ALL {
        let Ok(entries) = std::fs::read_dir(fixtures.join(outlet.as_str())) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "html") {
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let want = expected.join(outlet.as_str()).join(format!("{stem}.json"));
                if !want.is_file() {
                    missing.push(want.display().to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "pages without expectations: {missing:#?}"
    );
}

/// Every adapter (and the generic one) runs over every page without panicking, whatever
/// the outlet: a wrong adapter must degrade to notes, not crash.
#[test]
fn every_adapter_survives_every_page() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let url = url::Url::parse("https://example.com/story").expect("valid url");
    for outlet in Outlet::ALL {
        let Ok(entries) = std::fs::read_dir(fixtures.join(outlet.as_str())) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "html") {
                continue;
            }
            let html = String::from_utf8_lossy(&std::fs::read(&p).expect("readable")).into_owned();
            for adapter in Outlet::ALL.iter().copied().map(Some).chain([None]) {
                let ex = extract(adapter, &url, &html);
                for img in &ex.images {
                    assert!(
                        img.image_url.starts_with("http"),
                        "{}: {:?}",
                        p.display(),
                        img
                    );
                    assert!(!img.caption.is_empty(), "{}: {:?}", p.display(), img);
                }
            }
        }
    }
}
