//! `anchor study make|serve|report`: a human preference study of the generations.

use std::path::PathBuf;
use std::sync::Arc;

use anchor_core::step::Step;
use anchor_study::make::{StudyParams, StudyStep};
use anchor_study::report::ReportParams;
use anchor_study::server::{Server, bind};
use anchor_study::store::{Study, read_timing, read_votes};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::{App, user_error};
use crate::args::StepArgs;

/// `[study]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StudyConfig {
    /// Configurations compared; empty = every configuration in `generations`.
    pub configurations: Vec<String>,
    /// Compare every configuration with this one only; empty = every pair of configurations.
    pub against: String,
    /// (caption, seed) items per configuration pair.
    pub per_pair: usize,
    /// One attention check per this many comparisons; 0 = none.
    pub attention_every: usize,
    /// Seed of the study's draws and of the report's bootstrap.
    pub seed: u64,
    /// Port of `anchor study serve` on 127.0.0.1; 0 = any free port.
    pub port: u16,
    /// Raters below this attention-check accuracy are left out of the report.
    pub min_attention: f64,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
}

impl Default for StudyConfig {
    fn default() -> Self {
        let made = StudyParams::default();
        let report = ReportParams::default();
        StudyConfig {
            configurations: made.configurations,
            against: String::new(),
            per_pair: made.per_pair,
            attention_every: made.attention_every,
            seed: made.seed,
            port: 8731,
            min_attention: report.min_attention,
            resamples: report.resamples,
        }
    }
}

/// Arguments of `anchor study`.
#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: StudyAction,
}

/// The study's actions.
#[derive(Debug, clap::Subcommand)]
pub enum StudyAction {
    /// Build the study from `generations` into the `study_pairs` table (the `study` step).
    Make(MakeArgs),
    /// Serve the rating page on 127.0.0.1 and store every vote in the `votes` table.
    Serve(ServeArgs),
    /// Win rates with 95% bootstrap intervals and a Bradley–Terry ranking into eval/study.md.
    Report(ReportArgs),
}

/// Arguments of `anchor study make`.
#[derive(Debug, clap::Args)]
pub struct MakeArgs {
    /// Compare every configuration with this one only (e.g. safe).
    #[arg(long, value_name = "CONFIGURATION")]
    pub against: Option<String>,
    /// (caption, seed) items per configuration pair.
    #[arg(long, value_name = "N")]
    pub per_pair: Option<usize>,
    /// One attention check per this many comparisons (0 = none).
    #[arg(long, value_name = "N")]
    pub attention_every: Option<usize>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// Arguments of `anchor study serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 = any free port; the address is printed).
    #[arg(long)]
    pub port: Option<u16>,
}

/// Arguments of `anchor study report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Leave out raters whose attention-check accuracy is below this.
    #[arg(long, value_name = "X")]
    pub min_attention: Option<f64>,
    /// Where to write study.md, study.csv and study_ranking.csv [default: <out>/eval].
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

/// The effective `[study]` settings.
pub fn config(app: &App, args: Option<&MakeArgs>) -> anyhow::Result<StudyConfig> {
    let mut cfg: StudyConfig = app.doc.section("study")?;
    if let Some(a) = args {
        if let Some(v) = &a.against {
            cfg.against = v.clone();
        }
        if let Some(v) = a.per_pair {
            cfg.per_pair = v;
        }
        if let Some(v) = a.attention_every {
            cfg.attention_every = v;
        }
    }
    Ok(cfg)
}

fn build(cfg: &StudyConfig) -> anyhow::Result<StudyStep> {
    if cfg.per_pair == 0 {
        return Err(user_error("study.per_pair must be at least 1"));
    }
    Ok(StudyStep::new(StudyParams {
        configurations: cfg.configurations.clone(),
        against: (!cfg.against.is_empty()).then(|| cfg.against.clone()),
        per_pair: cfg.per_pair,
        attention_every: cfg.attention_every,
        seed: cfg.seed,
    }))
}

/// The step as configured (for `status` and `repair`).
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build(&config(app, None)?)?))
}

/// Runs `study` as configured.
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build(&config(app, None)?)?, step_args)?;
    Ok(())
}

/// `anchor study`.
pub fn run(args: &StudyArgs, app: &App) -> anyhow::Result<()> {
    match &args.action {
        StudyAction::Make(a) => {
            app.run_step(&build(&config(app, Some(a))?)?, &a.step)?;
            Ok(())
        }
        StudyAction::Serve(a) => serve(app, a),
        StudyAction::Report(a) => report(app, a),
    }
}

fn serve(app: &App, args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = config(app, None)?;
    let server = Server::open(app.out()).map_err(|e| user_error(format!("study serve: {e}")))?;
    let listener = bind(args.port.unwrap_or(cfg.port)).context("study serve")?;
    let addr = listener.local_addr().context("study serve")?;
    // The first line is the address, for people and for scripts that start the server.
    println!("study: serving {} pairs at http://{addr}/", server.len());
    if !app.quiet {
        println!(
            "study: votes go to {} as they come; stop with Ctrl-C and start again to resume",
            anchor_core::store::table_dir(app.out(), anchor_core::tables::votes::NAME).display()
        );
    }
    use std::io::Write as _;
    std::io::stdout().flush().context("study serve")?;
    Arc::new(server).serve(listener).context("study serve")?;
    Ok(())
}

fn report(app: &App, args: &ReportArgs) -> anyhow::Result<()> {
    let cfg = config(app, None)?;
    let study = Study::load(app.out()).map_err(|e| user_error(format!("study report: {e}")))?;
    let votes = read_votes(app.out(), &study.fingerprint)
        .map_err(|e| user_error(format!("study report: {e}")))?;
    if votes.is_empty() {
        return Err(user_error(
            "study report: no votes yet (`anchor study serve`, then rate some pairs)",
        ));
    }
    let timing = read_timing(app.out())?;
    let min_attention = args.min_attention.unwrap_or(cfg.min_attention);
    if !(0.0..=1.0).contains(&min_attention) {
        return Err(user_error(format!(
            "--min-attention {min_attention}: give a fraction between 0 and 1"
        )));
    }
    let params = ReportParams {
        min_attention,
        resamples: cfg.resamples.max(1),
        seed: cfg.seed,
    };
    let report = anchor_study::report::build(&study.pairs, &votes, &timing, &params)?;
    let dir = args
        .to
        .clone()
        .unwrap_or_else(|| anchor_core::ledger::step_dir(app.out(), "eval"));
    let files = anchor_study::report::write(&dir, &report)?;
    if !app.quiet {
        let kept = report.raters.iter().filter(|r| r.kept).count();
        println!(
            "study: {} votes from {} raters ({kept} kept); {}",
            votes.len(),
            report.raters.len(),
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for c in &report.comparisons {
            println!(
                "  {:<8} {} vs {}: {:.3} [{:.3}, {:.3}] over {} votes",
                c.question, c.a, c.b, c.win_rate, c.ci_low, c.ci_high, c.votes
            );
        }
    }
    Ok(())
}
