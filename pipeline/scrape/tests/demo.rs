//! The demo source end to end: every fault in the ground truth ends as the
//! truth says, all five outlets yield pairs, and two runs write the same
//! `pairs` bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anchor_core::step::{self, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::{articles, pairs};
use anchor_scrape::demo::faults::CaptionFault;
use anchor_scrape::step::{ScrapeParams, ScrapeStep};
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};

const N_ARTICLES: usize = 60;

fn photos_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/models/photos");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} absent (run scripts/fetch-models.sh); using generated photos only",
            dir.display()
        );
        None
    }
}

fn read(out: &Path, table: &str) -> Vec<RecordBatch> {
    let reader = TableReader::open(out, table, None).unwrap();
    reader.read_all(None, 4096).map(|b| b.unwrap()).collect()
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(col).unwrap().as_string::<i32>().clone();
            (0..a.len()).map(move |i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
        })
        .collect()
}

fn part_bytes(out: &Path, table: &str) -> Vec<Vec<u8>> {
    let reader = TableReader::open(out, table, None).unwrap();
    reader
        .parts()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn run_demo(out: &Path) -> ScrapeStep {
    let step = ScrapeStep::new(ScrapeParams::demo(N_ARTICLES), photos_dir()).unwrap();
    let outcome = step::run(&step, out, &RunOptions::default()).unwrap();
    assert!(
        matches!(outcome, step::Outcome::Complete { .. }),
        "{outcome:?}"
    );
    step
}

#[test]
fn every_fault_ends_as_its_ground_truth_says_and_reruns_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run1");
    let step = run_demo(&out);
    let plan = step.demo_plan().unwrap();
    let truth = plan.truth(&|i| format!("photo-{i}"));
    step.write_demo_truth(&out.join("demo_truth/demo_truth.parquet"))
        .unwrap();
    assert!(out.join("demo_truth/demo_truth.parquet").is_file());

    let a = read(&out, articles::NAME);
    let a_rows: BTreeMap<String, (String, Option<String>)> = strings(&a, articles::URL)
        .into_iter()
        .zip(
            strings(&a, articles::STATUS)
                .into_iter()
                .zip(strings(&a, articles::ERROR_CLASS)),
        )
        .map(|(u, (s, c))| (u.unwrap(), (s.unwrap(), c)))
        .collect();
    let p = read(&out, pairs::NAME);
    let p_rows: BTreeMap<String, (String, Option<String>, String)> = strings(&p, pairs::IMAGE_URL)
        .into_iter()
        .zip(
            strings(&p, pairs::STATUS)
                .into_iter()
                .zip(strings(&p, pairs::ERROR_CLASS)),
        )
        .zip(strings(&p, pairs::OUTLET))
        .map(|((u, (s, c)), o)| (u.unwrap(), (s.unwrap(), c, o.unwrap())))
        .collect();

    let mut mismatches = Vec::new();
    for t in &truth {
        let want = (
            t.expected.status.to_owned(),
            t.expected.error_class.map(str::to_owned),
        );
        let got = if t.kind == "article" {
            a_rows.get(&t.url).cloned()
        } else {
            p_rows.get(&t.url).map(|(s, c, _)| (s.clone(), c.clone()))
        };
        let ok = match (&got, t.expected.status) {
            (None, "absent") => true,
            (Some(g), _) => *g == want,
            (None, _) => false,
        };
        if !ok {
            mismatches.push(format!(
                "{} [{}]: want {want:?}, got {got:?}",
                t.url, t.fault
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Every listed article is a row; every pair row is in the truth.
    assert_eq!(a_rows.len(), N_ARTICLES);
    let truth_urls: BTreeSet<&str> = truth.iter().map(|t| t.url.as_str()).collect();
    for url in p_rows.keys() {
        assert!(
            truth_urls.contains(url.as_str()),
            "pair {url} not in the truth"
        );
    }
    let outlets: BTreeSet<&str> = p_rows
        .values()
        .filter(|(s, _, _)| s == "success")
        .map(|(_, _, o)| o.as_str())
        .collect();
    assert_eq!(outlets.len(), 5, "{outlets:?}");
    assert!(
        truth
            .iter()
            .any(|t| t.fault == CaptionFault::Empty.as_str())
    );

    // Second run into a fresh directory: identical bytes, part by part.
    let out2 = dir.path().join("run2");
    run_demo(&out2);
    assert_eq!(
        part_bytes(&out, pairs::NAME),
        part_bytes(&out2, pairs::NAME)
    );
    assert_eq!(
        part_bytes(&out, articles::NAME),
        part_bytes(&out2, articles::NAME)
    );

    // A third run over the first directory is up to date and fetches nothing.
    let again = ScrapeStep::new(ScrapeParams::demo(N_ARTICLES), photos_dir()).unwrap();
    let outcome = step::run(&again, &out, &RunOptions::default()).unwrap();
    assert!(
        matches!(outcome, step::Outcome::UpToDate { .. }),
        "{outcome:?}"
    );
    assert_eq!(again.demo_servers().unwrap().total_hits(), 0);
}

/// A run interrupted after some parts were committed (here: shard 0/2 ran,
/// shard 1/2 did not, which leaves the same state as a `kill -9` between
/// parts) resumes without fetching any URL of a committed part again, and
/// ends with the bytes of an uninterrupted run.
#[test]
fn resume_fetches_only_uncommitted_parts_and_matches_an_uninterrupted_run() {
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let step = ScrapeStep::new(ScrapeParams::demo(N), photos_dir()).unwrap();
    step::run(&step, &full, &RunOptions::default()).unwrap();

    let resumed = dir.path().join("resumed");
    let first = ScrapeStep::new(ScrapeParams::demo(N), photos_dir()).unwrap();
    let half = RunOptions {
        shard: "0/2".parse().unwrap(),
        ..RunOptions::default()
    };
    let outcome = step::run(&first, &resumed, &half).unwrap();
    assert!(
        matches!(outcome, step::Outcome::ShardDone { .. }),
        "{outcome:?}"
    );

    let second = ScrapeStep::new(ScrapeParams::demo(N), photos_dir()).unwrap();
    let outcome = step::run(&second, &resumed, &RunOptions::default()).unwrap();
    assert!(
        matches!(
            outcome,
            step::Outcome::Complete {
                parts_resumed: 2,
                ..
            }
        ),
        "{outcome:?}"
    );
    let plan = second.demo_plan().unwrap();
    let servers = second.demo_servers().unwrap();
    let per_part = ScrapeParams::demo(N).articles_per_part;
    for a in &plan.articles {
        let part = a.index / per_part;
        let hits = servers.hits(a.outlet, a.url.path());
        if part.is_multiple_of(2) {
            assert_eq!(hits, 0, "{} belongs to a committed part", a.url);
            for img in &a.images {
                assert_eq!(servers.hits(a.outlet, img.url.path()), 0, "{}", img.url);
            }
        } else {
            assert!(hits >= 1, "{} belongs to an uncommitted part", a.url);
        }
    }
    assert_eq!(
        part_bytes(&full, pairs::NAME),
        part_bytes(&resumed, pairs::NAME)
    );
    assert_eq!(
        part_bytes(&full, articles::NAME),
        part_bytes(&resumed, articles::NAME)
    );
}

fn all_rows(out: &Path, table: &str) -> Vec<RecordBatch> {
    let batches = read(out, table);
    let schema = batches[0].schema();
    vec![arrow_select::concat::concat_batches(&schema, &batches).unwrap()]
}

/// A demo scrape recorded to WARC and replayed without network access gives the same
/// `articles` and `pairs` rows; Python `warcio` reads the recording.
#[test]
fn warc_record_and_replay_give_the_same_rows() {
    const N: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let warc_dir = dir.path().join("warc");
    let mut params = ScrapeParams::demo(N);
    params.record_warc = Some(warc_dir.clone());
    let recording = ScrapeStep::new(params, photos_dir()).unwrap();
    step::run(&recording, &live, &RunOptions::default()).unwrap();
    drop(recording);

    let warc = anchor_scrape::warc::warc_path(&warc_dir);
    let replayed = dir.path().join("replayed");
    let replay = ScrapeStep::new(ScrapeParams::warc(warc.clone()), None).unwrap();
    step::run(&replay, &replayed, &RunOptions::default()).unwrap();
    assert!(
        replay.host_reports().iter().all(|r| r.requests == 0),
        "replay must not touch the network"
    );
    for table in [articles::NAME, pairs::NAME] {
        assert_eq!(
            all_rows(&live, table),
            all_rows(&replayed, table),
            "{table} differs"
        );
    }

    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return;
    };
    let script = r#"
import sys
from warcio.archiveiterator import ArchiveIterator
kinds = {}
ok_jpeg = 0
with open(sys.argv[1], 'rb') as f:
    for rec in ArchiveIterator(f):
        kinds[rec.rec_type] = kinds.get(rec.rec_type, 0) + 1
        if rec.rec_type == 'response' and rec.http_headers.get_statuscode() == '200':
            body = rec.content_stream().read()
            if rec.http_headers.get_header('Content-Type') == 'image/jpeg' and body[:3] == b'\xff\xd8\xff':
                ok_jpeg += 1
print(kinds.get('response', 0), kinds.get('metadata', 0), ok_jpeg)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&warc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warcio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<usize> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let successes = strings(&read(&live, pairs::NAME), pairs::STATUS)
        .iter()
        .filter(|s| s.as_deref() == Some("success"))
        .count();
    assert!(
        nums[0] > successes,
        "responses {} vs successful pairs {successes}",
        nums[0]
    );
    assert!(
        nums[1] >= 2,
        "listing plus at least one timeout record: {text}"
    );
    assert!(
        nums[2] >= successes,
        "warcio read {} JPEG bodies, {successes} pairs succeeded",
        nums[2]
    );
}
