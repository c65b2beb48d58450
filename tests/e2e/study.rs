//! `anchor study` end to end: make a study from generations, rate it in headless Chromium
//! (the page's form, keyboard shortcuts and buttons), stop and restart the server mid-way
//! and resume, refuse bad and repeated votes, then check `votes` and the report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anchor_core::store::TableReader;
use anchor_core::tables::{study_pairs, votes};

use crate::eval::fixtures;
use crate::util::{Run, TestDir};

/// A running `anchor study serve` and its address.
struct Served {
    child: Child,
    url: String,
    /// Held open: the server's later lines would meet a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Served {
    fn start(dir: &TestDir) -> Self {
        let mut child = dir
            .anchor()
            .args(["study", "serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Served {
            child,
            url,
            _stdout: stdout,
        }
    }

    /// Stops the server the hard way: votes must already be on disk.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// One raw HTTP request; the status code and body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let host = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(host).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rates the study at `url` in Chromium; the script's JSON summary.
fn rate(
    python: &Path,
    served: &Served,
    out: &Path,
    rater: &str,
    strategy: &str,
    max_votes: usize,
    screenshot: Option<&Path>,
) -> serde_json::Value {
    let script = fixtures::repo().join("tests/e2e/study_browser.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg(&served.url)
        .arg(out)
        .arg(rater)
        .arg(strategy)
        .arg(max_votes.to_string());
    if let Some(s) = screenshot {
        cmd.arg(s);
    }
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{} failed: {}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn browser_ready() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var_os("ANCHOR_PYTHON").or_else(|| {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        None
    })?);
    // `make test` installs both (`make browser`); without them this test must fail, not skip.
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: `make browser` installs Debian's chromium and chromium-driver"
        );
    }
    Some(python)
}

#[test]
fn a_study_is_rated_in_the_browser_resumed_after_a_kill_and_reported() {
    let Some(python) = browser_ready() else {
        return;
    };
    let dir = TestDir::new();
    let out = dir.path().join("data/out");
    if fixtures::standard(&out).is_none() {
        return;
    }
    Run::of(
        dir.anchor()
            .args(["study", "make", "--per-pair", "4", "--attention-every", "2"]),
    )
    .success();
    let reader = TableReader::open(&out, study_pairs::NAME, Some(study_pairs::schema())).unwrap();
    let pairs = study_pairs::read(&reader).unwrap();
    assert_eq!(pairs.len(), 6);
    let compare = pairs.iter().filter(|p| p.kind == "compare").count();
    assert_eq!(compare, 4);
    let safe_left = pairs
        .iter()
        .filter(|p| p.kind == "compare" && p.left_configuration == "safe")
        .count();
    assert_eq!(safe_left, 2, "safe is on the left in half the comparisons");

    // ann rates three pairs; the server is killed; she comes back and finishes.
    let served = Served::start(&dir);
    let shot = dir.path().join("study.png");
    let first = rate(&python, &served, &out, "ann", "prefer-safe", 3, Some(&shot));
    assert_eq!(first["first_answered"], 0);
    assert_eq!(first["answered"], 3);
    assert_eq!(first["done"], false);
    served.kill();
    let served = Served::start(&dir);
    let second = rate(&python, &served, &out, "ann", "prefer-safe", 99, None);
    assert_eq!(second["first_answered"], 3, "ann resumes where she stopped");
    assert_eq!(second["answered"], 6);
    assert_eq!(second["done"], true);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );

    // bob misses every attention check.
    let bob = rate(&python, &served, &out, "bob", "careless", 99, None);
    assert_eq!(bob["answered"], 6);

    // The API refuses a second vote on a pair, a bad rater id and a bad answer.
    let pair = pairs[0].pair_id.as_str();
    let vote = |rater: &str, subjects: &str| {
        format!(
            r#"{{"rater":"{rater}","pair_id":"{pair}","subjects":"{subjects}","quality":"left","millis":5}}"#
        )
    };
    let (status, body) = served.request("POST", "/api/vote", &vote("ann", "left"));
    assert_eq!(status, 409, "{body}");
    let (status, _) = served.request("POST", "/api/vote", &vote("a b", "left"));
    assert_eq!(status, 400);
    let (status, body) = served.request("POST", "/api/vote", &vote("cy", "maybe"));
    assert_eq!(status, 400);
    assert!(body.contains("maybe"), "{body}");
    let (status, _) = served.request("GET", "/image/q99999/left", "");
    assert_eq!(status, 404);
    served.kill();

    let reader = TableReader::open(&out, votes::NAME, Some(votes::schema())).unwrap();
    let rows = votes::read(&reader).unwrap();
    assert_eq!(rows.len(), 12);
    let positions: Vec<i64> = rows
        .iter()
        .filter(|r| r.rater == "ann")
        .map(|r| r.position)
        .collect();
    assert_eq!(positions, (0..6).collect::<Vec<_>>());
    for r in rows.iter().filter(|r| r.rater == "ann") {
        let p = pairs.iter().find(|p| p.pair_id == r.pair_id).unwrap();
        if p.kind == "compare" {
            let safe_side = if p.left_configuration == "safe" {
                "left"
            } else {
                "right"
            };
            assert_eq!(r.subjects, safe_side, "{r:?}");
            assert_ne!(r.quality, safe_side, "{r:?}");
        }
    }

    let report = Run::of(dir.anchor().args(["study", "report"])).success();
    assert!(
        report.stdout().contains("12 votes from 2 raters (1 kept)"),
        "{}",
        report.stdout()
    );
    let md = std::fs::read_to_string(out.join("eval/study.md")).unwrap();
    assert!(md.contains("| ann | 6 | 2/2 | yes |"), "{md}");
    assert!(md.contains("| bob | 6 | 0/2 | no |"), "{md}");
    let csv = std::fs::read_to_string(out.join("eval/study.csv")).unwrap();
    // Only ann counts: safe wins every subjects vote and loses every quality vote.
    let line = |question: &str| {
        csv.lines()
            .find(|l| l.starts_with(question))
            .unwrap_or_else(|| panic!("no {question} row in {csv}"))
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let subjects = line("subjects,");
    let quality = line("quality,");
    let rate_of_safe = |row: &[String]| {
        let rate: f64 = row[7].parse().unwrap();
        if row[1] == "safe" { rate } else { 1.0 - rate }
    };
    assert_eq!(subjects[3], "4");
    assert_eq!(rate_of_safe(&subjects), 1.0);
    assert_eq!(rate_of_safe(&quality), 0.0);
    let ranking = std::fs::read_to_string(out.join("eval/study_ranking.csv")).unwrap();
    assert!(ranking.contains("subjects,1,safe,"), "{ranking}");
    assert!(ranking.contains("quality,1,base,"), "{ranking}");

    // A study made again (other settings) does not mix in the old votes.
    Run::of(dir.anchor().args(["study", "make", "--per-pair", "3"])).success();
    let stale = Run::of(dir.anchor().args(["study", "report"]));
    assert_eq!(stale.code(), Some(2), "{}", stale.stderr());
    assert!(
        stale.stderr().contains("votes of another study"),
        "{}",
        stale.stderr()
    );
}
