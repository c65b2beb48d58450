//! Idempotence, staleness, crash-resume, corruption and sharding of the step
//! runner, on a step defined here: it hashes the files of a folder into a
//! table, slowly enough to be killed mid-run.
//!
//! The kill and shard tests run the step in real child processes: this test
//! binary re-executes itself with `ANCHOR_WORKER_*` set, and the `worker`
//! test below turns into the step's process. `kill -9` is a real SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anchor_core::PartStats;
use anchor_core::shard::Shard;
use anchor_core::step::{
    self, BoxError, Outcome, PartSink, RunOptions, Step, StepCtx, StepId, StepState,
};
use anchor_core::tables::TableDef;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use sha2::{Digest, Sha256};

const FILES_PER_PART: usize = 3;

fn hashes_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("file", DataType::Utf8, false),
            Field::new("sha256", DataType::Utf8, false),
            Field::new("size", DataType::Int64, false),
        ]))
    })
    .clone()
}

static FILE_HASHES: TableDef = TableDef {
    name: "file_hashes",
    schema: hashes_schema,
    row_group_rows: 2,
};

/// Hashes every file of `input` (sorted by name), `FILES_PER_PART` per part.
struct HashFiles {
    input: PathBuf,
    /// Part of the fingerprint: changing it makes the step stale.
    salt: String,
    /// Execution detail, not a parameter: it does not change the output.
    delay: Duration,
}

impl HashFiles {
    fn files(&self) -> Result<Vec<PathBuf>, BoxError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.input)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort();
        Ok(files)
    }
}

impl StepId for HashFiles {
    const NAME: &'static str = "hash_files";
    const VERSION: u32 = 1;
}

impl Step for HashFiles {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({ "input": self.input, "salt": self.salt }))
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&FILE_HASHES]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        Ok(self.files()?.len().div_ceil(FILES_PER_PART))
    }
    fn run_part(
        &self,
        part: usize,
        _ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let files = self.files()?;
        let chunk = files
            .chunks(FILES_PER_PART)
            .nth(part)
            .ok_or("part out of range")?;
        let (mut names, mut hashes, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for path in chunk {
            std::thread::sleep(self.delay);
            let bytes = std::fs::read(path)?;
            let mut h = Sha256::new();
            h.update(self.salt.as_bytes());
            h.update(&bytes);
            names.push(
                path.file_name()
                    .ok_or("no file name")?
                    .to_string_lossy()
                    .into_owned(),
            );
            hashes.push(hex::encode(h.finalize()));
            sizes.push(bytes.len() as i64);
        }
        let batch = RecordBatch::try_new(
            hashes_schema(),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(hashes)),
                Arc::new(Int64Array::from(sizes)),
            ],
        )?;
        sink.write("file_hashes", &batch)?;
        Ok(PartStats {
            rows_in: chunk.len() as u64,
            rows_out: chunk.len() as u64,
            ..Default::default()
        })
    }
}

fn make_input(dir: &Path, n: usize) -> PathBuf {
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..n {
        std::fs::write(
            input.join(format!("file-{i:03}.txt")),
            format!("content of file {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    input
}

fn opts() -> RunOptions {
    RunOptions {
        jobs: 2,
        ..Default::default()
    }
}

/// Every file under `dir/file_hashes`, name → bytes.
fn table_bytes(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("file_hashes"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn mtimes(out: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut all = Vec::new();
    for dir in [
        out.join("file_hashes"),
        out.join("hash_files"),
        out.join("hash_files/parts"),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                all.push((e.path(), e.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    all.sort();
    all
}

/// The body of a child process spawned by [`spawn_worker`]; a no-op when run
/// by the test harness directly.
#[test]
fn worker() {
    let (Ok(input), Ok(out)) = (
        std::env::var("ANCHOR_WORKER_INPUT"),
        std::env::var("ANCHOR_WORKER_OUT"),
    ) else {
        return;
    };
    let delay_ms: u64 = std::env::var("ANCHOR_WORKER_DELAY_MS")
        .unwrap()
        .parse()
        .unwrap();
    let shard: Shard = std::env::var("ANCHOR_WORKER_SHARD")
        .unwrap()
        .parse()
        .unwrap();
    let step = HashFiles {
        input: input.into(),
        salt: "s".into(),
        delay: Duration::from_millis(delay_ms),
    };
    let options = RunOptions {
        shard,
        jobs: 1,
        ..Default::default()
    };
    step::run(&step, Path::new(&out), &options).unwrap();
}

fn spawn_worker(input: &Path, out: &Path, delay_ms: u64, shard: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--test-threads", "1", "--nocapture"])
        .env("ANCHOR_WORKER_INPUT", input)
        .env("ANCHOR_WORKER_OUT", out)
        .env("ANCHOR_WORKER_DELAY_MS", delay_ms.to_string())
        .env("ANCHOR_WORKER_SHARD", shard)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn committed_markers(out: &Path) -> usize {
    std::fs::read_dir(out.join("hash_files/parts"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn second_run_is_a_no_op_and_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 10);
    let out = dir.path().join("out");
    let step = HashFiles {
        input,
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    match step::run(&step, &out, &opts()).unwrap() {
        Outcome::Complete {
            parts_run, rows, ..
        } => {
            assert_eq!(parts_run, 4);
            assert_eq!(rows["file_hashes"], 10);
        }
        other => panic!("expected Complete, got {other:?}"),
    }
    let before = mtimes(&out);
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(
        step::run(&step, &out, &opts()).unwrap(),
        Outcome::UpToDate { .. }
    ));
    assert_eq!(
        mtimes(&out),
        before,
        "an up-to-date run must not touch any file"
    );
    assert!(matches!(
        step::inspect(&step, &out).unwrap(),
        StepState::Done { .. }
    ));
}

#[test]
fn changed_parameter_makes_the_step_stale_and_force_recomputes() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 7);
    let out = dir.path().join("out");
    let step = HashFiles {
        input: input.clone(),
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    step::run(&step, &out, &opts()).unwrap();
    let original = table_bytes(&out);

    let changed = HashFiles {
        input: input.clone(),
        salt: "other".into(),
        delay: Duration::ZERO,
    };
    assert_eq!(
        step::inspect(&changed, &out).unwrap(),
        StepState::Stale {
            reason: "parameters changed".into()
        }
    );
    assert!(matches!(
        step::run(&changed, &out, &opts()).unwrap(),
        Outcome::Complete { parts_run: 3, .. }
    ));
    assert_ne!(table_bytes(&out), original);

    // Back to the first parameters, forced: the original bytes come back.
    let forced = RunOptions {
        force: true,
        ..opts()
    };
    assert!(matches!(
        step::run(&step, &out, &forced).unwrap(),
        Outcome::Complete { parts_run: 3, .. }
    ));
    assert_eq!(table_bytes(&out), original);
}

/// A step whose parameters cannot be written down: a map keyed by pairs.
struct UnwritableParams(HashFiles);

impl StepId for UnwritableParams {
    const NAME: &'static str = "hash_files";
    const VERSION: u32 = 1;
}

impl Step for UnwritableParams {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        let keyed_by_pairs: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        serde_json::to_value(keyed_by_pairs)
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        self.0.outputs()
    }
    fn plan(&self, ctx: &StepCtx) -> Result<usize, BoxError> {
        self.0.plan(ctx)
    }
    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        self.0.run_part(part, ctx, sink)
    }
}

#[test]
fn parameters_that_cannot_be_serialised_stop_the_run_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 4);
    let out = dir.path().join("out");
    let step = UnwritableParams(HashFiles {
        input,
        salt: "s".into(),
        delay: Duration::ZERO,
    });
    let err = step::run(&step, &out, &opts()).unwrap_err();
    assert!(
        matches!(&err, anchor_core::Error::Params { step, .. } if step == "hash_files"),
        "{err}"
    );
    assert_eq!(step::inspect(&step, &out).unwrap(), StepState::NotRun);
    assert!(
        !out.join("hash_files").exists(),
        "nothing may be written for a run without a fingerprint"
    );
}

#[test]
fn kill_9_mid_run_then_resume_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 30);

    let reference = dir.path().join("reference");
    let step = HashFiles {
        input: input.clone(),
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    step::run(&step, &reference, &opts()).unwrap();

    let out = dir.path().join("killed");
    let mut child = spawn_worker(&input, &out, 60, "0/1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_markers(&out) < 3 {
        assert!(Instant::now() < deadline, "worker made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "worker finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = committed_markers(&out);
    assert!(
        committed < 10,
        "the kill must land mid-run ({committed} of 10 parts committed)"
    );

    let step = HashFiles {
        input,
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    match step::run(&step, &out, &opts()).unwrap() {
        Outcome::Complete {
            parts_run,
            parts_resumed,
            ..
        } => {
            assert_eq!(
                parts_resumed, committed,
                "committed parts must not be recomputed"
            );
            assert_eq!(parts_run + parts_resumed, 10);
        }
        other => panic!("expected Complete, got {other:?}"),
    }
    assert_eq!(table_bytes(&out), table_bytes(&reference));
    let leftovers: Vec<_> = std::fs::read_dir(out.join("file_hashes"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files must be cleaned up");
}

#[test]
fn shards_in_separate_processes_merge_to_the_single_process_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 20);
    let single = dir.path().join("single");
    let step = HashFiles {
        input: input.clone(),
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    step::run(&step, &single, &opts()).unwrap();

    let sharded = dir.path().join("sharded");
    let children: Vec<Child> = (0..3)
        .map(|i| spawn_worker(&input, &sharded, 0, &format!("{i}/3")))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(table_bytes(&sharded), table_bytes(&single));
    // The last shard to finish completed the step.
    assert!(matches!(
        step::run(&step, &sharded, &opts()).unwrap(),
        Outcome::UpToDate { .. }
    ));
}

#[test]
fn one_shard_alone_leaves_the_step_partial() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 12);
    let out = dir.path().join("out");
    let step = HashFiles {
        input,
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    let shard = RunOptions {
        shard: "1/2".parse().unwrap(),
        ..opts()
    };
    assert_eq!(
        step::run(&step, &out, &shard).unwrap(),
        Outcome::ShardDone {
            parts_run: 2,
            committed: 2,
            total: 4
        }
    );
    assert_eq!(
        step::inspect(&step, &out).unwrap(),
        StepState::Partial {
            committed: 2,
            total: 4
        }
    );
    assert!(matches!(
        step::run(&step, &out, &opts()).unwrap(),
        Outcome::Complete {
            parts_run: 2,
            parts_resumed: 2,
            ..
        }
    ));
}

#[test]
fn corrupted_part_is_reported_by_name_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 9);
    let out = dir.path().join("out");
    let step = HashFiles {
        input,
        salt: "s".into(),
        delay: Duration::ZERO,
    };
    step::run(&step, &out, &opts()).unwrap();
    let original = table_bytes(&out);

    // Same size, one flipped byte: only the content hash can see it.
    let victim = out.join("file_hashes/part-00001.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let damaged = step::repair(&step, &out).unwrap();
    assert_eq!(damaged.len(), 1);
    assert!(
        damaged[0].to_string().contains("part-00001.parquet"),
        "{}",
        damaged[0]
    );

    // Truncation is caught even by the cheap check of an up-to-date run.
    step::run(&step, &out, &opts()).unwrap();
    assert_eq!(table_bytes(&out), original);
    let truncated = out.join("file_hashes/part-00002.parquet");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let err = step::run(&step, &out, &opts()).unwrap_err().to_string();
    assert!(
        err.contains("part-00002.parquet") && err.contains("damaged"),
        "{err}"
    );
    assert!(matches!(
        step::run(
            &step,
            &out,
            &RunOptions {
                force: true,
                ..opts()
            }
        )
        .unwrap(),
        Outcome::Complete { .. }
    ));
    assert_eq!(table_bytes(&out), original);
}
