//! A real `kill -9` of every step of the `anchor` binary, then a resume: each step is run
//! once uninterrupted into `reference/`, then into `killed/` it is killed after its first
//! committed part (single-part steps: as soon as the part has started), `anchor status`
//! must say `partial` with the committed count, the rerun must say how many parts it
//! resumed, and every file the step writes must equal the reference byte for byte.
//! Also: `score` run as three concurrent `--shard I/3` processes into one output equals
//! the single-process output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anchor_core::ledger::{self, StepStatus};

use crate::eval::fixtures;
use crate::util::{Run, TestDir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models() -> PathBuf {
    repo().join("data/models")
}

/// The model files a case needs, or `None` (with a note) when `make models` has not
/// fetched them.
fn present(files: &[&str]) -> Option<()> {
    for f in files {
        let p = models().join(f);
        if !p.exists() {
            eprintln!(
                "skipping: {} is missing (scripts/fetch-models.sh)",
                p.display()
            );
            return None;
        }
    }
    Some(())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Parts committed by the step's current, unfinished run: markers carrying the fingerprint
/// of a partial ledger record. Markers of an earlier complete run do not count.
pub fn committed_parts(out: &Path, step: &str) -> usize {
    let Ok(Some(record)) = ledger::read_record(out, step) else {
        return 0;
    };
    if record.status != StepStatus::Partial {
        return 0;
    }
    ledger::read_markers(out, step)
        .map(|m| {
            m.values()
                .filter(|m| m.fingerprint == record.fingerprint)
                .count()
        })
        .unwrap_or(0)
}

/// Whether the step has planned its current run (its ledger record is partial).
fn started(out: &Path, step: &str) -> bool {
    matches!(
        ledger::read_record(out, step),
        Ok(Some(r)) if r.status == StepStatus::Partial
    )
}

/// `(committed, total)` from the step's `anchor status` line, which must say `partial`.
pub fn status_partial(status: &str, step: &str) -> (usize, usize) {
    let line = status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .unwrap_or_else(|| panic!("no status line for {step}:\n{status}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"partial"), "{status}");
    let committed = words[2].parse().unwrap_or_else(|_| panic!("{line}"));
    assert_eq!(words.get(3), Some(&"of"), "{line}");
    let total = words[4].parse().unwrap_or_else(|_| panic!("{line}"));
    (committed, total)
}

/// Asserts that `stdout` holds the summary line of a run of `step` that computed `run`
/// parts and resumed `resumed`.
pub fn assert_done(stdout: &str, step: &str, run: usize, resumed: usize) {
    let parts = if run == 1 { "part" } else { "parts" };
    let mut want = format!("{step}: done, {run} {parts} computed");
    if resumed > 0 {
        want.push_str(&format!(", {resumed} resumed"));
    }
    let found = stdout.lines().any(|l| {
        l.strip_prefix(want.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(" (") || rest.starts_with(';'))
    });
    assert!(found, "expected {want:?} in:\n{stdout}");
}

/// Every file under `root/rel` (a file or a folder), relative path → bytes.
fn files(root: &Path, rel: &str) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.join(rel)];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
                stack.push(e.unwrap().path());
            }
        } else {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            found.insert(
                name,
                std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            );
        }
    }
    assert!(!found.is_empty(), "{}/{rel} holds no file", root.display());
    found
}

/// Panics with the names (not the bytes) of the files that differ.
fn assert_same(what: &str, got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>) {
    let mut diff = Vec::new();
    for (name, bytes) in want {
        match got.get(name) {
            None => diff.push(format!("{name}: missing")),
            Some(b) if b != bytes => diff.push(format!(
                "{name}: {} bytes, reference {} bytes, differ",
                b.len(),
                bytes.len()
            )),
            Some(_) => {}
        }
    }
    for name in got.keys().filter(|n| !want.contains_key(*n)) {
        diff.push(format!("{name}: not in the reference"));
    }
    assert!(diff.is_empty(), "{what}:\n{}", diff.join("\n"));
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// One step under test.
struct Case<'a> {
    /// Its name (state folder, status line, summary prefix).
    step: &'a str,
    /// Files and folders, relative to the output folder, that must equal the reference
    /// once the step has resumed.
    compared: &'a [&'a str],
    /// Whether the step has a single part: it is then killed as soon as it has planned
    /// (mid-part), otherwise after its first committed part.
    single_part: bool,
}

/// A step killed with `(committed, total)` parts, waiting for the run that resumes it.
struct Pending<'a> {
    case: &'a Case<'a>,
    committed: usize,
    total: usize,
    clock: Instant,
}

/// Checks the run that resumed `p` (its stdout) and `p`'s files against `reference`.
fn check_resumed(dir: &TestDir, reference: &str, killed: &str, p: &Pending, stdout: &str) {
    let step = p.case.step;
    assert_done(stdout, step, p.total - p.committed, p.committed);
    for rel in p.case.compared {
        assert_same(
            &format!("{step}: {rel} after kill -9 and resume"),
            &files(&dir.path().join(killed), rel),
            &files(&dir.path().join(reference), rel),
        );
    }
    eprintln!(
        "{step}: killed after {} of {} parts, resumed, byte-identical ({:.1} s)",
        p.committed,
        p.total,
        p.clock.elapsed().as_secs_f64()
    );
}

/// Runs `command` (whose steps `cases` lists in order) into `killed`, whose inputs match
/// `reference`'s. Each case's step is killed with SIGKILL once it is mid-run, `anchor
/// status` must say `partial` with the committed count, and the next run of `command`
/// resumes it; when that run reaches the next case's step it is killed in turn. The last
/// run goes to the end. Every resumed step must print how many parts it resumed and
/// leave its files byte-identical to the reference.
fn kill_each_step(
    dir: &TestDir,
    global: &[String],
    reference: &str,
    killed: &str,
    command: &[&str],
    cases: &[Case],
) {
    let out = dir.path().join(killed);
    let mut pending: Option<Pending> = None;
    for case in cases {
        let clock = Instant::now();
        let step = case.step;
        let log = dir.path().join(format!("{killed}-{step}.stderr"));
        let stdout = dir.path().join(format!("{killed}-{step}.stdout"));
        let mut child = dir
            .anchor()
            .args(global)
            .args(["--out", killed, "--jobs", "1"])
            .args(command)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let ready = if case.single_part {
                started(&out, step)
            } else {
                committed_parts(&out, step) >= 1
            };
            if ready {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{step} finished ({status}) before it could be killed; stderr:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                kill(child);
                panic!("{step} committed no part in 600 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        kill(child);
        if let Some(p) = pending.take() {
            // The killed run resumed the previous case's step before it reached this one.
            let text = std::fs::read_to_string(&stdout).unwrap();
            check_resumed(dir, reference, killed, &p, &text);
        }
        let committed = committed_parts(&out, step);
        let status = Run::of(dir.anchor().args(global).args(["--out", killed, "status"]))
            .success()
            .stdout();
        let (said, total) = status_partial(&status, step);
        assert_eq!(said, committed, "{status}");
        if case.single_part {
            assert_eq!(total, 1, "{step} was expected to have one part: {status}");
        } else {
            assert!(
                total >= 3,
                "{step} needs several parts to be killed mid-run: {status}"
            );
            assert!(
                committed < total,
                "the kill must land mid-run ({committed} of {total} parts)"
            );
        }
        pending = Some(Pending {
            case,
            committed,
            total,
            clock,
        });
    }
    let last = Run::of(
        dir.anchor()
            .args(global)
            .args(["--out", killed])
            .args(command),
    )
    .success()
    .stdout();
    if let Some(p) = pending {
        check_resumed(dir, reference, killed, &p, &last);
    }
}

/// Settings of the dataset chain: the `ci` scale with parts of four articles (ten parts
/// for scrape, score and export), two captions per annotate part.
fn dataset_args() -> Vec<String> {
    let mut args = vec![
        "--config".to_owned(),
        repo().join("data/anchor.toml").display().to_string(),
    ];
    args.extend(strings(&[
        "--scale",
        "ci",
        "--set",
        "scrape.articles_per_part=4",
        "--set",
        "curate.nsfw_runtime=\"tract\"",
        "--set",
        "annotate.backend=\"heuristic\"",
        "--set",
        "annotate.captions_per_part=2",
        "--set",
    ]));
    args.push(format!("paths.models={}", models().display()));
    args
}

#[test]
fn dataset_steps_and_annotate_resume_byte_identical_after_kill_9() {
    if present(&["open-nsfw.onnx", "open-clip/bpe_simple_vocab_16e6.txt.gz"]).is_none() {
        return;
    }
    let dir = TestDir::new();
    let global = dataset_args();
    let chain = Run::of(
        dir.anchor()
            .args(&global)
            .args(["--out", "reference", "run", "annotate"]),
    )
    .success()
    .stdout();
    assert!(chain.contains("annotate: done"), "{chain}");

    fn case(step: &'static str, compared: &'static [&'static str], single: bool) -> Case<'static> {
        Case {
            step,
            compared,
            single_part: single,
        }
    }
    let killed = |command: &[&str], cases: &[Case<'static>]| {
        kill_each_step(&dir, &global, "reference", "killed", command, cases);
    };
    killed(
        &["scrape"],
        &[case("scrape", &["articles", "pairs"], false)],
    );
    killed(
        &["curate"],
        &[
            case("score", &["pairs_scored"], false),
            case("curate", &["pairs_curated"], true),
        ],
    );
    // The card writes into the export's folder, so the folder is compared once the card
    // has resumed too.
    killed(
        &["split"],
        &[
            case("split", &["splits"], true),
            case("export", &[], false),
            case("card", &["dataset"], true),
        ],
    );
    killed(&["annotate"], &[case("annotate", &["subjects"], false)]);

    // The gguf backend (the real SmolLM2 file), after the heuristic one in the same folders.
    if present(&["SmolLM2-135M-Instruct.Q4_1.gguf"]).is_some() {
        let mut gguf = global.clone();
        gguf.extend(strings(&[
            "--set",
            "annotate.backend=\"gguf\"",
            "--set",
            "annotate.captions_per_part=4",
        ]));
        let run = Run::of(
            dir.anchor()
                .args(&gguf)
                .args(["--out", "reference", "annotate"]),
        )
        .success()
        .stdout();
        assert!(run.contains("annotate: done"), "{run}");
        kill_each_step(
            &dir,
            &gguf,
            "reference",
            "killed",
            &["annotate"],
            &[case("annotate", &["subjects"], false)],
        );
    }

    scrape_shards_equal_one_process(&dir, &global, "reference");
    curate_shards_stop_after_their_own_parts(&dir, &global, "reference");
}

/// `scrape` as three concurrent `--shard I/3` processes over one output folder: each
/// computes exactly its parts, the last one completes the step, and the merged tables
/// equal the single-process `reference` byte for byte.
fn scrape_shards_equal_one_process(dir: &TestDir, global: &[String], reference: &str) {
    let clock = Instant::now();
    let total = ledger::read_record(&dir.path().join(reference), "scrape")
        .unwrap()
        .expect("the reference ran scrape")
        .n_parts;
    assert!(total >= 3, "scrape has {total} parts");
    let children: Vec<(usize, Child)> = (0..3)
        .map(|i| {
            let child = dir
                .anchor()
                .args(global)
                .args(["--out", "sharded", "scrape", "--shard", &format!("{i}/3")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    let mut completed = 0;
    for (i, child) in children {
        let run = Run {
            output: child.wait_with_output().unwrap(),
        }
        .success();
        let stdout = run.stdout();
        let own = (0..total).filter(|p| p % 3 == i).count();
        let parts = if own == 1 { "part" } else { "parts" };
        let shard_line = format!("scrape: shard {i}/3 done, {own} {parts} computed;");
        if stdout.contains(&shard_line) {
            continue;
        }
        assert_done(&stdout, "scrape", own, 0);
        completed += 1;
    }
    assert!(completed >= 1, "no shard completed the step");
    let status = Run::of(
        dir.anchor()
            .args(global)
            .args(["--out", "sharded", "status"]),
    )
    .success()
    .stdout();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("scrape") && l.contains("done")),
        "{status}"
    );
    for table in ["articles", "pairs"] {
        assert_same(
            &format!("{table} over three shard processes"),
            &files(&dir.path().join("sharded"), table),
            &files(&dir.path().join(reference), table),
        );
    }
    eprintln!(
        "scrape: {total} parts over 3 concurrent shard processes, byte-identical to one process ({:.1} s)",
        clock.elapsed().as_secs_f64()
    );
}

/// `anchor curate --shard I/2` (score, then curate) over the sharded scrape: a shard that
/// leaves score incomplete stops there and says so, instead of running curate on part of
/// its input; a plain `anchor curate` then finishes, equal to the single-process run.
fn curate_shards_stop_after_their_own_parts(dir: &TestDir, global: &[String], reference: &str) {
    let first = Run::of(
        dir.anchor()
            .args(global)
            .args(["--out", "sharded", "curate", "--shard", "0/2"]),
    )
    .success()
    .stdout();
    assert!(
        first.contains("score: the next steps run when every shard is done"),
        "{first}"
    );
    assert!(!first.contains("curate: done"), "{first}");
    Run::of(
        dir.anchor()
            .args(global)
            .args(["--out", "sharded", "curate", "--shard", "1/2"]),
    )
    .success();
    let last = Run::of(
        dir.anchor()
            .args(global)
            .args(["--out", "sharded", "curate"]),
    )
    .success()
    .stdout();
    assert!(last.contains("score: up to date"), "{last}");
    for table in ["pairs_scored", "pairs_curated"] {
        assert_same(
            &format!("{table} after sharded curate runs"),
            &files(&dir.path().join("sharded"), table),
            &files(&dir.path().join(reference), table),
        );
    }
}

#[test]
fn sample_resumes_byte_identical_after_kill_9() {
    use anchor_sample::testing::{FixtureCaption, write_inputs, write_random_base};
    if present(&["open-clip/bpe_simple_vocab_16e6.txt.gz"]).is_none() {
        return;
    }
    let dir = TestDir::new();
    let base = dir.path().join("model");
    write_random_base(&base).unwrap();
    let captions: Vec<FixtureCaption> = [
        (
            "a1",
            "Chancellor Angela Merkel arrives for talks in Brussels",
            &["Angela Merkel", "Brussels"][..],
        ),
        ("b2", "Rain falls on an empty street at dusk", &[][..]),
        (
            "c3",
            "Lionel Messi lifts the trophy in Qatar",
            &["Lionel Messi", "Qatar"][..],
        ),
        ("d4", "A fisherman repairs his nets at dawn", &[][..]),
    ]
    .iter()
    .map(|(id, text, subjects)| FixtureCaption {
        id: (*id).into(),
        caption: (*text).into(),
        split: "test".into(),
        subset: if subjects.is_empty() {
            "non_entity"
        } else {
            "entity"
        }
        .into(),
        outlet: "bbc".into(),
        topic: "world".into(),
        kept: true,
        subjects: Some(subjects.iter().map(|s| (s.to_string(), 1.21)).collect()),
    })
    .collect();
    for out in ["reference", "killed"] {
        write_inputs(&dir.path().join(out), &captions).unwrap();
    }
    // Twelve images, one per part.
    let global = vec![
        "--set".to_owned(),
        format!("paths.models={}", models().display()),
        "--set".to_owned(),
        format!("sample.base={:?}", base.display().to_string()),
        "--set".to_owned(),
        "sample.configurations=[\"base\", \"weighting\", \"prefix\"]".to_owned(),
        "--set".to_owned(),
        "sample.seeds=[42]".to_owned(),
        "--set".to_owned(),
        "sample.resolution=16".to_owned(),
        "--set".to_owned(),
        "sample.steps=2".to_owned(),
        "--set".to_owned(),
        "sample.images_per_part=1".to_owned(),
    ];
    let run = Run::of(
        dir.anchor()
            .args(&global)
            .args(["--out", "reference", "sample"]),
    )
    .success()
    .stdout();
    assert_done(&run, "sample", 12, 0);
    kill_each_step(
        &dir,
        &global,
        "reference",
        "killed",
        &["sample"],
        &[Case {
            step: "sample",
            compared: &["generations"],
            single_part: false,
        }],
    );
}

#[test]
fn eval_resumes_byte_identical_after_kill_9() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let dir = TestDir::new();
    for out in ["reference", "killed"] {
        let out = dir.path().join(out);
        let Some((_, gens)) = fixtures::standard(&out) else {
            return;
        };
        // Four configurations (four parts): the fixture's two, and each again under
        // another name.
        let mut more = gens.clone();
        for g in &gens {
            let mut g = g.clone();
            g.configuration = match g.configuration.as_str() {
                "base" => "prefix".into(),
                _ => "weighting".into(),
            };
            more.push(g);
        }
        fixtures::write_generations(&out, &more, "kill");
    }
    let global = vec![
        "--config".to_owned(),
        repo().join("data/anchor.toml").display().to_string(),
        "--scale".to_owned(),
        "ci".to_owned(),
        "--set".to_owned(),
        format!("paths.models={}", models().display()),
        "--set".to_owned(),
        format!("eval.inception={:?}", model.display().to_string()),
        "--set".to_owned(),
        "eval.kid_subsets=5".to_owned(),
    ];
    let run = Run::of(
        dir.anchor()
            .args(&global)
            .args(["--out", "reference", "eval"]),
    )
    .success()
    .stdout();
    assert_done(&run, "eval", 4, 0);
    kill_each_step(
        &dir,
        &global,
        "reference",
        "killed",
        &["eval"],
        &[Case {
            step: "eval",
            compared: &["metrics", "eval/tables.md", "eval/tables.csv", "eval/grids"],
            single_part: false,
        }],
    );
}
