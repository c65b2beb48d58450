//! Settings resolved once from the command line and the config file, and the
//! shared way every step subcommand runs a step and reports on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_core::config::ConfigDoc;
use anchor_core::step::{self, Outcome, RunOptions, Step};
use anchor_core::{Error as CoreError, Shard};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::args::{GlobalArgs, StepArgs};
use crate::device::DeviceChoice;

/// The config file used when `--config` is not given (and only if it exists).
pub const DEFAULT_CONFIG: &str = "data/anchor.toml";
/// The scale used when none is given; it needs no overlay in the file.
pub const DEFAULT_SCALE: &str = "demo";

/// `[paths]`: where outputs and cached model files live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PathsConfig {
    /// Output directory: one folder per table and per step.
    pub out: PathBuf,
    /// Cached model files fetched from registry packages.
    pub models: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            out: PathBuf::from("data/out"),
            models: PathBuf::from("data/models"),
        }
    }
}

/// `[run]`: how steps execute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Parts computed at once; 0 means one per core.
    pub jobs: usize,
    /// Where train, sample, eval and fid compute: `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            jobs: 0,
            device: DeviceChoice::Auto.to_string(),
        }
    }
}

/// Everything a subcommand needs, resolved once.
pub struct App {
    /// The layered config document.
    pub doc: ConfigDoc,
    /// `[paths]`.
    pub paths: PathsConfig,
    /// `[run]`.
    pub run: RunConfig,
    /// `--quiet`.
    pub quiet: bool,
    /// `run.device`, parsed.
    pub device: DeviceChoice,
    /// The device once opened: a chain of steps shares one CUDA context.
    opened: std::sync::OnceLock<candle_core::Device>,
}

/// Top-level config sections the binary knows; anything else is a typo.
pub const KNOWN_SECTIONS: &[&str] = &[
    "paths", "run", "scrape", "curate", "split", "annotate", "sample", "train", "eval", "study",
];

impl App {
    /// Loads the config file, applies the scale and the overrides.
    pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Self> {
        let (path, required) = match &global.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let mut doc = ConfigDoc::load(&path, required)?;
        let scale = global.scale.as_deref().unwrap_or(DEFAULT_SCALE);
        doc.apply_scale(scale, &[DEFAULT_SCALE])?;
        for assignment in &global.set {
            doc.set(assignment)?;
        }
        if let Some(out) = &global.out {
            doc.set_value(
                &["paths", "out"],
                toml::Value::String(out.display().to_string()),
            )?;
        }
        if let Some(jobs) = global.jobs {
            let jobs = i64::try_from(jobs).context("--jobs is too large")?;
            doc.set_value(&["run", "jobs"], toml::Value::Integer(jobs))?;
        }
        if let Some(device) = &global.device {
            doc.set_value(&["run", "device"], toml::Value::String(device.clone()))?;
        }
        if let Some(unknown) = doc.sections().find(|s| !KNOWN_SECTIONS.contains(s)) {
            return Err(CoreError::Config(format!(
                "unknown section [{unknown}] (known: {})",
                KNOWN_SECTIONS.join(", ")
            ))
            .into());
        }
        let paths = doc.section("paths")?;
        let run: RunConfig = doc.section("run")?;
        let device = run.device.parse::<DeviceChoice>()?;
        Ok(App {
            doc,
            paths,
            run,
            quiet: global.quiet,
            device,
            opened: std::sync::OnceLock::new(),
        })
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.paths.out
    }

    /// Parts computed at once.
    pub fn jobs(&self) -> usize {
        match self.run.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Opens the device that train, sample, eval and fid compute on.
    pub fn device(&self) -> anyhow::Result<candle_core::Device> {
        if let Some(device) = self.opened.get() {
            return Ok(device.clone());
        }
        let device = self.device.open()?;
        tracing::info!(device = %crate::device::describe(&device), "compute device");
        Ok(self.opened.get_or_init(|| device).clone())
    }

    /// Runs `step` with the step flags and prints a one-paragraph summary.
    pub fn run_step(&self, step: &dyn Step, args: &StepArgs) -> anyhow::Result<Outcome> {
        let shard = match &args.shard {
            Some(s) => s.parse::<Shard>()?,
            None => Shard::ALL,
        };
        let opts = RunOptions {
            force: args.force,
            shard,
            jobs: self.jobs(),
            progress: !self.quiet,
        };
        let outcome =
            step::run(step, self.out(), &opts).with_context(|| format!("step {}", step.name()))?;
        if !self.quiet {
            println!("{}", summarize(step.name(), &outcome, shard));
        }
        Ok(outcome)
    }

    /// Runs `step` as [`App::run_step`] does; `false` when this shard finished its own parts
    /// but the step is not complete yet. Commands that run several steps stop there: the next
    /// step needs all of this one's output, and the last shard to finish (or a run without
    /// `--shard`) carries on.
    pub fn run_step_of_many(&self, step: &dyn Step, args: &StepArgs) -> anyhow::Result<bool> {
        let outcome = self.run_step(step, args)?;
        if let Outcome::ShardDone { .. } = outcome {
            if !self.quiet {
                println!(
                    "{}: the next steps run when every shard is done (rerun without --shard)",
                    step.name()
                );
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// The effective config as TOML: every known section with its defaults
    /// filled in, after the file, the scale and the overrides.
    pub fn effective_config(&self) -> anyhow::Result<toml::Table> {
        let mut table = toml::Table::new();
        table.insert("paths".into(), toml::Value::try_from(&self.paths)?);
        table.insert("run".into(), toml::Value::try_from(&self.run)?);
        for (name, value) in crate::commands::effective_sections(self)? {
            table.insert(name.into(), value);
        }
        Ok(table)
    }
}

fn rows_text(rows: &BTreeMap<String, u64>) -> String {
    rows.iter()
        .map(|(table, n)| format!("{table} {}", counted(*n as usize, "row")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1 part`, `2 parts`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The line printed after a step.
pub fn summarize(name: &str, outcome: &Outcome, shard: Shard) -> String {
    match outcome {
        Outcome::UpToDate { rows } if rows.is_empty() => format!("{name}: up to date"),
        Outcome::UpToDate { rows } => format!("{name}: up to date ({})", rows_text(rows)),
        Outcome::Complete {
            parts_run,
            parts_resumed,
            stats,
            rows,
        } => {
            let mut line = format!("{name}: done, {} computed", counted(*parts_run, "part"));
            if *parts_resumed > 0 {
                line.push_str(&format!(", {parts_resumed} resumed"));
            }
            if !rows.is_empty() {
                line.push_str(&format!(" ({})", rows_text(rows)));
            }
            if !stats.dropped.is_empty() {
                let dropped: Vec<String> = stats
                    .dropped
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                line.push_str(&format!("; dropped: {}", dropped.join(", ")));
            }
            line
        }
        Outcome::ShardDone {
            parts_run,
            committed,
            total,
        } => format!(
            "{name}: shard {shard} done, {} computed; {committed} of {} committed over all shards (the step completes when the last shard finishes)",
            counted(*parts_run, "part"),
            counted(*total, "part")
        ),
    }
}

/// An error the user fixes (a bad flag, setting or path): `anchor` exits with status 2.
pub fn user_error(msg: impl Into<String>) -> anyhow::Error {
    CoreError::Config(msg.into()).into()
}

/// Whether an error is the user's to fix (exit status 2).
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<CoreError>()
            .is_some_and(CoreError::is_user_error)
    })
}

/// Logs go to stderr; `RUST_LOG` overrides the level chosen by -q/-v.
pub fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
