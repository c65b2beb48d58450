//! Steps and the runner that makes them idempotent, resumable and shardable.
//!
//! A [`Step`] declares its name, version, canonical parameters, input tables
//! and output tables, cuts its work into a deterministic number of parts
//! ([`Step::plan`]) and computes one part at a time ([`Step::run_part`]),
//! streaming record batches into a [`PartSink`]. [`run`] does the rest:
//!
//! - fingerprints the run (name, version, params, input table fingerprints)
//!   and skips it when the ledger holds a complete record with the same one;
//! - runs the parts this shard owns that are not committed, `jobs` at a
//!   time, each into temporary files renamed into place, then writes the
//!   part's marker (stats first, marker last, as datatrove does);
//! - when every part is committed, writes the output manifests, sums the
//!   stats and marks the record complete.
//!
//! A killed run therefore resumes from its committed parts, and because parts
//! are deterministic and written with fixed settings, the result is
//! byte-identical to an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use arrow_array::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, IoContext, Result};
use crate::ledger::{self, PartMarker, StepRecord, StepStatus, TableManifest};
use crate::shard::Shard;
use crate::stats::PartStats;
use crate::store::{self, PartWriter, TableReader};
use crate::tables::{self, TableDef};

/// A step's own error type, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A step's identity, fixed at compile time: the name of its subcommand and state folder,
/// and the version of its output semantics. Both enter every run's fingerprint.
pub trait StepId {
    /// The step's name: its subcommand and its state folder.
    const NAME: &'static str;
    /// Bump when the step's output semantics change.
    const VERSION: u32;
}

/// [`StepId`] for a step behind `dyn Step`, where associated constants cannot be read.
/// Implemented for every [`StepId`]; only a test double that stands in for several named
/// steps implements it by hand.
pub trait Identity {
    /// [`StepId::NAME`].
    fn name(&self) -> &'static str;
    /// [`StepId::VERSION`].
    fn version(&self) -> u32;
}

impl<T: StepId> Identity for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn version(&self) -> u32 {
        T::VERSION
    }
}

/// One stage of the pipeline. Its name and version come from its [`StepId`].
pub trait Step: Identity + Sync {
    /// Canonical parameters; everything that changes the output must be here.
    /// An error here stops the run: a run without its parameters has no
    /// fingerprint to be told apart by.
    fn params(&self) -> serde_json::Result<serde_json::Value>;
    /// Tables read.
    fn inputs(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Tables written (each part writes one file per table).
    fn outputs(&self) -> Vec<&'static TableDef>;
    /// Number of parts. Must depend only on inputs and params, never on the
    /// shard count.
    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError>;
    /// Computes part `part`, streaming its rows into `sink`.
    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError>;
}

/// What a step sees while it runs.
pub struct StepCtx {
    out: PathBuf,
    fingerprint: String,
    inputs: BTreeMap<String, TableManifest>,
    progress: ProgressBar,
}

impl StepCtx {
    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// This run's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The manifest of input table `table`.
    pub fn input(&self, table: &str) -> Result<&TableManifest> {
        self.inputs.get(table).ok_or_else(|| Error::InputNotReady {
            table: table.to_owned(),
            reason: "the step did not declare it as an input".to_owned(),
        })
    }

    /// A reader over input table `table`, checked against its declared schema.
    pub fn reader(&self, table: &str) -> Result<TableReader> {
        let manifest = self.input(table)?;
        let expected = tables::lookup(table).map(|t| (t.schema)());
        let reader = TableReader::open(&self.out, table, expected)?;
        if reader.num_parts() != manifest.parts.len() {
            return Err(Error::InputNotReady {
                table: table.to_owned(),
                reason: format!(
                    "{} has {} part files but its manifest lists {}; run `anchor repair`",
                    reader.dir().display(),
                    reader.num_parts(),
                    manifest.parts.len()
                ),
            });
        }
        Ok(reader)
    }

    /// The progress bar (hidden with `--quiet`); steps may set its message.
    pub fn progress(&self) -> &ProgressBar {
        &self.progress
    }
}

/// Receives the record batches of one part, one writer per output table.
pub struct PartSink {
    writers: BTreeMap<&'static str, PartWriter>,
}

impl PartSink {
    /// Appends `batch` to output table `table`.
    pub fn write(&mut self, table: &str, batch: &RecordBatch) -> Result<()> {
        let writer = self.writers.get_mut(table).ok_or_else(|| Error::Column {
            table: table.to_owned(),
            column: "*".to_owned(),
            detail: "the step did not declare this table as an output".to_owned(),
        })?;
        writer.write(batch)
    }

    /// Rows written so far to `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.writers.get(table).map_or(0, PartWriter::rows)
    }
}

/// How to run a step.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Recompute even when up to date (this shard's parts only).
    pub force: bool,
    /// Which parts this process runs.
    pub shard: Shard,
    /// Parts computed at once.
    pub jobs: usize,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            force: false,
            shard: Shard::ALL,
            jobs: 1,
            progress: false,
        }
    }
}

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The ledger already held a complete record with this fingerprint.
    UpToDate {
        /// Rows per output table.
        rows: BTreeMap<String, u64>,
    },
    /// Every part is committed and the step is complete.
    Complete {
        /// Parts computed by this process.
        parts_run: usize,
        /// Parts found already committed.
        parts_resumed: usize,
        /// Summed statistics over all parts.
        stats: PartStats,
        /// Rows per output table.
        rows: BTreeMap<String, u64>,
    },
    /// This shard's parts are committed; other shards still have work.
    ShardDone {
        /// Parts computed by this process.
        parts_run: usize,
        /// Parts committed over all shards.
        committed: usize,
        /// Parts in total.
        total: usize,
    },
}

/// The state of a step as the ledger and markers tell it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Never run.
    NotRun,
    /// Complete, with this fingerprint still current.
    Done {
        /// Rows per output table.
        rows: BTreeMap<String, u64>,
    },
    /// Complete or partial, but parameters or inputs have changed since.
    Stale {
        /// What changed.
        reason: String,
    },
    /// Some parts committed under the current fingerprint.
    Partial {
        /// Committed parts.
        committed: usize,
        /// Parts in total.
        total: usize,
    },
    /// Inputs are not ready.
    Blocked {
        /// Why.
        reason: String,
    },
}

fn resolve_inputs(step: &dyn Step, out: &Path) -> Result<BTreeMap<String, TableManifest>> {
    let mut inputs = BTreeMap::new();
    for table in step.inputs() {
        let (_, manifest) = ledger::find_table(out, table)?;
        inputs.insert(table.to_owned(), manifest);
    }
    Ok(inputs)
}

/// The step's parameters, or an error naming the step.
fn step_params(step: &dyn Step) -> Result<serde_json::Value> {
    step.params().map_err(|source| Error::Params {
        step: step.name().to_owned(),
        source,
    })
}

fn current_fingerprint(
    step: &dyn Step,
    params: &serde_json::Value,
    inputs: &BTreeMap<String, TableManifest>,
) -> String {
    let input_fps: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.fingerprint.clone()))
        .collect();
    ledger::fingerprint(step.name(), step.version(), params, &input_fps)
}

/// Checks the cheap integrity of every output of a complete record.
fn check_outputs(out: &Path, record: &StepRecord, full: bool) -> Result<()> {
    for manifest in record.outputs.values() {
        let dir = store::table_dir(out, &manifest.table);
        for part in &manifest.parts {
            store::check_part(&manifest.table, &dir, part, full)?;
        }
    }
    Ok(())
}

/// Reports what the ledger says about `step` without running anything.
pub fn inspect(step: &dyn Step, out: &Path) -> Result<StepState> {
    let record = ledger::read_record(out, step.name())?;
    let inputs = match resolve_inputs(step, out) {
        Ok(inputs) => inputs,
        Err(Error::InputNotReady { table, reason }) => {
            return Ok(match record {
                None => StepState::Blocked {
                    reason: format!("input {table}: {reason}"),
                },
                Some(_) => StepState::Stale {
                    reason: format!("input {table}: {reason}"),
                },
            });
        }
        Err(e) => return Err(e),
    };
    let Some(record) = record else {
        return Ok(StepState::NotRun);
    };
    let params = step_params(step)?;
    let fingerprint = current_fingerprint(step, &params, &inputs);
    if record.fingerprint != fingerprint {
        return Ok(StepState::Stale {
            reason: stale_reason(step, &params, &record, &inputs),
        });
    }
    match record.status {
        StepStatus::Complete => Ok(StepState::Done {
            rows: record
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.rows()))
                .collect(),
        }),
        StepStatus::Partial => {
            let committed = valid_markers(out, step, &fingerprint)?.len();
            Ok(StepState::Partial {
                committed,
                total: record.n_parts,
            })
        }
    }
}

fn stale_reason(
    step: &dyn Step,
    params: &serde_json::Value,
    record: &StepRecord,
    inputs: &BTreeMap<String, TableManifest>,
) -> String {
    if record.version != step.version() {
        return format!("step version {} → {}", record.version, step.version());
    }
    if &record.params != params {
        return "parameters changed".to_owned();
    }
    for (table, manifest) in inputs {
        if record.inputs.get(table) != Some(&manifest.fingerprint) {
            return format!("input {table} changed");
        }
    }
    "fingerprint changed".to_owned()
}

/// Markers whose fingerprint is current and whose files pass the cheap check.
fn valid_markers(
    out: &Path,
    step: &dyn Step,
    fingerprint: &str,
) -> Result<BTreeMap<usize, PartMarker>> {
    let mut markers = ledger::read_markers(out, step.name())?;
    markers.retain(|_, m| {
        m.fingerprint == fingerprint
            && m.files.iter().all(|(table, file)| {
                store::check_part(table, &store::table_dir(out, table), file, false).is_ok()
            })
    });
    Ok(markers)
}

/// Verifies every committed part of `step` by content hash, deletes the
/// markers of damaged ones so the next run recomputes them, and returns the
/// damaged files. The record is downgraded to partial when anything is wrong.
pub fn repair(step: &dyn Step, out: &Path) -> Result<Vec<Error>> {
    let mut damaged = Vec::new();
    let markers = ledger::read_markers(out, step.name())?;
    for (index, marker) in markers {
        let mut bad = false;
        for (table, file) in &marker.files {
            if let Err(e) = store::check_part(table, &store::table_dir(out, table), file, true) {
                damaged.push(e);
                bad = true;
            }
        }
        if bad {
            let path = ledger::marker_path(out, step.name(), index);
            fs::remove_file(&path).at(&path)?;
        }
    }
    if !damaged.is_empty()
        && let Some(mut record) = ledger::read_record(out, step.name())?
    {
        record.status = StepStatus::Partial;
        record.outputs.clear();
        ledger::write_json_atomic(&ledger::record_path(out, step.name()), &record)?;
    }
    Ok(damaged)
}

/// What `step`'s parts would see in a run under `out`, for a process that computes
/// beside the run without writing: the other ranks of a data-parallel step, whose rank 0
/// runs the step with [`run`]. Nothing is written or checked against the ledger.
pub fn follower_context(step: &dyn Step, out: &Path) -> Result<StepCtx> {
    let inputs = resolve_inputs(step, out)?;
    let params = step_params(step)?;
    let fingerprint = current_fingerprint(step, &params, &inputs);
    Ok(StepCtx {
        out: out.to_path_buf(),
        fingerprint,
        inputs,
        progress: ProgressBar::hidden(),
    })
}

/// Runs `step` under `out` with `opts`. See the module docs.
pub fn run(step: &dyn Step, out: &Path, opts: &RunOptions) -> Result<Outcome> {
    let name = step.name();
    let inputs = resolve_inputs(step, out)?;
    let params = step_params(step)?;
    let fingerprint = current_fingerprint(step, &params, &inputs);
    let existing = ledger::read_record(out, name)?;

    if let Some(record) = &existing
        && !opts.force
        && record.fingerprint == fingerprint
        && record.status == StepStatus::Complete
    {
        // A damaged output is reported by name, never silently rebuilt.
        check_outputs(out, record, false)?;
        return Ok(Outcome::UpToDate {
            rows: record
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.rows()))
                .collect(),
        });
    }

    let ctx = StepCtx {
        out: out.to_path_buf(),
        fingerprint: fingerprint.clone(),
        inputs: inputs.clone(),
        progress: ProgressBar::hidden(),
    };
    let n_parts = step.plan(&ctx).map_err(|source| Error::Step {
        step: name.to_owned(),
        source,
    })?;
    let record = StepRecord {
        step: name.to_owned(),
        version: step.version(),
        fingerprint: fingerprint.clone(),
        params,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.fingerprint.clone()))
            .collect(),
        n_parts,
        status: StepStatus::Partial,
        tables: step.outputs().iter().map(|t| t.name.to_owned()).collect(),
        outputs: BTreeMap::new(),
    };
    let record_is_current = existing
        .as_ref()
        .is_some_and(|r| r.fingerprint == fingerprint && r.status == StepStatus::Partial);
    if !record_is_current {
        ledger::write_json_atomic(&ledger::record_path(out, name), &record)?;
    }

    let mut committed = valid_markers(out, step, &fingerprint)?;
    if opts.force {
        committed.retain(|i, _| !opts.shard.owns(*i));
    }
    let todo: Vec<usize> = (0..n_parts)
        .filter(|i| opts.shard.owns(*i) && !committed.contains_key(i))
        .collect();
    let resumed = (0..n_parts)
        .filter(|i| opts.shard.owns(*i) && committed.contains_key(i))
        .count();
    if resumed > 0 && !todo.is_empty() {
        tracing::info!(
            step = name,
            resumed,
            remaining = todo.len(),
            "resuming from committed parts"
        );
    }

    let progress = if opts.progress {
        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} parts {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(name);
        bar
    } else {
        ProgressBar::hidden()
    };
    let ctx = StepCtx { progress, ..ctx };

    let new_markers = run_parts(step, &ctx, &todo, opts.jobs.max(1))?;
    ctx.progress.finish_and_clear();
    let parts_run = new_markers.len();
    for marker in new_markers {
        committed.insert(marker.part, marker);
    }

    // Another shard may have committed parts meanwhile; re-read before deciding.
    let all = valid_markers(out, step, &fingerprint)?;
    if (0..n_parts).any(|i| !all.contains_key(&i)) {
        return Ok(Outcome::ShardDone {
            parts_run,
            committed: all.len(),
            total: n_parts,
        });
    }
    finish(step, out, record, &all, parts_run, resumed)
}

fn finish(
    step: &dyn Step,
    out: &Path,
    mut record: StepRecord,
    markers: &BTreeMap<usize, PartMarker>,
    parts_run: usize,
    parts_resumed: usize,
) -> Result<Outcome> {
    let mut stats = PartStats::default();
    let mut outputs = BTreeMap::new();
    for table in step.outputs() {
        let mut parts = Vec::with_capacity(markers.len());
        for marker in markers.values() {
            if let Some(file) = marker.files.get(table.name) {
                parts.push(file.clone());
            }
        }
        remove_strays(&store::table_dir(out, table.name), &parts)?;
        outputs.insert(table.name.to_owned(), TableManifest::new(table.name, parts));
    }
    for marker in markers.values() {
        stats += &marker.stats;
    }
    remove_stray_markers(out, step.name(), markers.len())?;
    ledger::write_json_atomic(&ledger::stats_path(out, step.name()), &stats)?;
    record.status = StepStatus::Complete;
    record.outputs = outputs;
    let rows = record
        .outputs
        .iter()
        .map(|(k, v)| (k.clone(), v.rows()))
        .collect();
    ledger::write_json_atomic(&ledger::record_path(out, step.name()), &record)?;
    Ok(Outcome::Complete {
        parts_run,
        parts_resumed,
        stats,
        rows,
    })
}

/// Removes part files (and temporaries) that the manifest does not list:
/// leftovers of an earlier run with more parts, or of a crash.
fn remove_strays(dir: &Path, keep: &[store::PartFile]) -> Result<()> {
    let keep: BTreeSet<&str> = keep.iter().map(|p| p.file.as_str()).collect();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_part = store::parse_part_file_name(name).is_some();
        let is_tmp = name.starts_with(".part-") && name.ends_with(".tmp");
        if (is_part && !keep.contains(name)) || is_tmp {
            fs::remove_file(entry.path()).at(entry.path())?;
        }
    }
    Ok(())
}

fn remove_stray_markers(out: &Path, step: &str, n_parts: usize) -> Result<()> {
    for (index, _) in ledger::read_markers(out, step)?.range(n_parts..) {
        let path = ledger::marker_path(out, step, *index);
        fs::remove_file(&path).at(&path)?;
    }
    Ok(())
}

fn run_parts(
    step: &dyn Step,
    ctx: &StepCtx,
    todo: &[usize],
    jobs: usize,
) -> Result<Vec<PartMarker>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(todo.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&part) = todo.get(i) else { break };
                    match run_one_part(step, ctx, part) {
                        Ok(marker) => {
                            ctx.progress.inc(1);
                            if let Ok(mut d) = done.lock() {
                                d.push(marker);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut markers = done.into_inner().unwrap_or_else(|p| p.into_inner());
    markers.sort_by_key(|m| m.part);
    Ok(markers)
}

fn run_one_part(step: &dyn Step, ctx: &StepCtx, part: usize) -> Result<PartMarker> {
    let started = Instant::now();
    let mut writers = BTreeMap::new();
    for table in step.outputs() {
        writers.insert(
            table.name,
            PartWriter::create(&ctx.out, table, part, &ctx.fingerprint)?,
        );
    }
    let mut sink = PartSink { writers };
    let mut stats = step
        .run_part(part, ctx, &mut sink)
        .map_err(|source| Error::Part {
            step: step.name().to_owned(),
            part,
            source,
        })?;
    let mut files = BTreeMap::new();
    for (table, writer) in sink.writers {
        files.insert(table.to_owned(), writer.commit()?);
    }
    stats.elapsed_s = started.elapsed().as_secs_f64();
    let marker = PartMarker {
        step: step.name().to_owned(),
        fingerprint: ctx.fingerprint.clone(),
        part,
        files,
        stats,
    };
    ledger::write_json_atomic(&ledger::marker_path(&ctx.out, step.name(), part), &marker)?;
    tracing::debug!(step = step.name(), part, "part committed");
    Ok(marker)
}
