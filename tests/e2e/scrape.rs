//! `anchor scrape` on the embedded demo source: idempotence, a real
//! `kill -9` mid-run and resume, and `anchor status`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Run, TestDir};

const SMALL: &[&str] = &[
    "--set",
    "scrape.demo_articles=48",
    "--set",
    "scrape.articles_per_part=4",
];

/// Every Parquet file of the scrape's tables, relative path → bytes.
fn table_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for table in ["articles", "pairs"] {
        for entry in std::fs::read_dir(out.join(table)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push((
                format!("{table}/{name}"),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    files.sort();
    files
}

fn markers(out: &Path) -> usize {
    std::fs::read_dir(out.join("scrape/parts"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn demo_scrape_is_idempotent_and_survives_kill_9() {
    let dir = TestDir::new();
    let reference = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "scrape"]),
    )
    .success();
    assert!(
        reference.stdout().contains("scrape: done"),
        "{}",
        reference.stdout()
    );
    let again = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "scrape"]),
    )
    .success();
    assert!(
        again.stdout().contains("scrape: up to date"),
        "{}",
        again.stdout()
    );

    let status = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "status"]),
    )
    .success()
    .stdout();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("scrape") && l.contains("done")),
        "{status}"
    );

    // Kill a real anchor process once a few parts are committed.
    let mut child = dir
        .anchor()
        .args(SMALL)
        .args(["--out", "killed", "--jobs", "1", "scrape"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = dir.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(120);
    while markers(&killed) < 2 {
        assert!(Instant::now() < deadline, "the scrape made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the scrape finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = markers(&killed);
    assert!(
        committed < 12,
        "the kill must land mid-run ({committed} of 12 parts)"
    );

    let partial = Run::of(dir.anchor().args(SMALL).args(["--out", "killed", "status"]))
        .success()
        .stdout();
    assert!(partial.contains("partial"), "{partial}");

    let resumed = Run::of(dir.anchor().args(SMALL).args(["--out", "killed", "scrape"]))
        .success()
        .stdout();
    assert!(
        resumed.contains(&format!("{committed} resumed")),
        "{resumed}"
    );
    assert_eq!(
        table_files(&killed),
        table_files(&dir.path().join("reference"))
    );
}
