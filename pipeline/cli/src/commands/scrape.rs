//! `anchor scrape`: turn a source into the `articles` and `pairs` tables.

use std::path::PathBuf;

use anchor_core::step::{Step, StepId};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use anchor_scrape::collection::Collection;
use anchor_scrape::discover::LiveSpec;
use anchor_scrape::outlets::{Day, OutletsConfig};
use anchor_scrape::step::{ScrapeParams, ScrapeStep};

use crate::app::{App, user_error};
use crate::args::StepArgs;

/// `[scrape]` in the config file; every key is also a flag of `anchor scrape`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrapeConfig {
    /// `demo`, `live`, `warc:PATH`, `urls:PATH`, `visualnews:PATH` or `nytimes800k:PATH`.
    pub source: String,
    /// The outlets file of the live source.
    pub outlets: PathBuf,
    /// Live source: first publication day, `YYYY-MM-DD` (empty: no bound).
    pub since: String,
    /// Live source: last publication day, `YYYY-MM-DD` (empty: no bound).
    pub until: String,
    /// Live source: articles per outlet at most (0: no quota).
    pub per_outlet: usize,
    /// Number of articles of the demo site.
    pub demo_articles: usize,
    /// Articles per part (the resume unit).
    pub articles_per_part: usize,
    /// User agent (must carry a contact URL); empty = the fetcher's default.
    pub user_agent: String,
    /// Requests per second per host when the host has no own setting; 0 = the source's default.
    pub rate: f64,
    /// Permit loopback/private/link-local addresses (the demo sets it itself).
    pub allow_private_addresses: bool,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            source: "demo".into(),
            outlets: PathBuf::from("data/outlets.toml"),
            since: String::new(),
            until: String::new(),
            per_outlet: 0,
            demo_articles: 200,
            articles_per_part: 16,
            user_agent: String::new(),
            rate: 0.0,
            allow_private_addresses: false,
        }
    }
}

/// Arguments of `anchor scrape`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScrapeArgs {
    /// A helper instead of the step.
    #[command(subcommand)]
    pub action: Option<ScrapeAction>,
    /// Source: `demo` (the embedded five-outlet site served on 127.0.0.1),
    /// `live` (the outlets of --outlets: sitemaps → articles → images),
    /// `warc:PATH` (replay of a `--record-warc` recording, no network),
    /// `urls:PATH` (CSV/TSV/JSONL/Parquet list of image URLs and captions),
    /// `visualnews:PATH` (VisualNews data.json, images beside it) or
    /// `nytimes800k:PATH` (NYTimes800k `articles` export, images in
    /// images_processed/ beside it).
    #[arg(long)]
    pub source: Option<String>,
    /// Live source: the outlets file (seeds, allowed hosts, article
    /// patterns, per-host rates) [default: data/outlets.toml].
    #[arg(long, value_name = "FILE")]
    pub outlets: Option<PathBuf>,
    /// Live source: first publication day (YYYY-MM-DD); also the range dated
    /// seeds are expanded over.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<String>,
    /// Live source: last publication day (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<String>,
    /// Live source: articles per outlet at most (newest first).
    #[arg(long, value_name = "N")]
    pub per_outlet: Option<usize>,
    /// Record every HTTP exchange to DIR/scrape.warc.gz (WARC/1.1).
    #[arg(long, value_name = "DIR")]
    pub record_warc: Option<PathBuf>,
    /// Number of articles of the demo site.
    #[arg(long)]
    pub demo_articles: Option<usize>,
    /// Articles per part (the resume unit).
    #[arg(long)]
    pub articles_per_part: Option<usize>,
    /// User agent (must carry a contact URL).
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Requests per second per host when the host has no own setting.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Permit loopback/private/link-local addresses (the demo sets it).
    #[arg(long)]
    pub allow_private_addresses: bool,
    /// Start from the committed `articles`/`pairs` of the same source and
    /// settings and re-fetch only rows whose error class is transient
    /// (timeouts, connect errors, 429, 5xx); every other row is kept as it
    /// is. A second retry of the same output needs `--force`.
    #[arg(long)]
    pub retry_failed: bool,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[scrape]` settings: config file, scale, `--set`, then flags.
pub fn config(app: &App, args: Option<&ScrapeArgs>) -> anyhow::Result<ScrapeConfig> {
    let mut cfg: ScrapeConfig = app.doc.section("scrape")?;
    if let Some(args) = args {
        if let Some(source) = &args.source {
            cfg.source = source.clone();
        }
        if let Some(p) = &args.outlets {
            cfg.outlets = p.clone();
        }
        if let Some(d) = &args.since {
            cfg.since = d.clone();
        }
        if let Some(d) = &args.until {
            cfg.until = d.clone();
        }
        if let Some(n) = args.per_outlet {
            cfg.per_outlet = n;
        }
        if let Some(n) = args.demo_articles {
            cfg.demo_articles = n;
        }
        if let Some(n) = args.articles_per_part {
            cfg.articles_per_part = n;
        }
        if let Some(ua) = &args.user_agent {
            cfg.user_agent = ua.clone();
        }
        if let Some(rate) = args.rate {
            cfg.rate = rate;
        }
        cfg.allow_private_addresses |= args.allow_private_addresses;
    }
    Ok(cfg)
}

/// Builds the step from resolved settings.
pub fn build(
    app: &App,
    cfg: &ScrapeConfig,
    record_warc: Option<PathBuf>,
    retry_failed: bool,
) -> anyhow::Result<ScrapeStep> {
    let mut params = match cfg.source.split_once(':') {
        None if cfg.source == "demo" => ScrapeParams::demo(cfg.demo_articles),
        None if cfg.source == "live" => ScrapeParams::live(live_spec(cfg)?),
        Some(("warc", path)) => ScrapeParams::warc(path.into()),
        Some(("urls", path)) => ScrapeParams::urls(path.into()),
        Some(("visualnews", path)) => ScrapeParams::collection(Collection::VisualNews, path.into()),
        Some(("nytimes800k", path)) => {
            ScrapeParams::collection(Collection::NyTimes800k, path.into())
        }
        _ => {
            return Err(anchor_core::Error::Config(format!(
                "scrape.source {:?}: expected demo, live, warc:PATH, urls:PATH, \
                 visualnews:PATH or nytimes800k:PATH",
                cfg.source
            ))
            .into());
        }
    };
    params.record_warc = record_warc;
    params.retry_failed = retry_failed;
    params.articles_per_part = cfg.articles_per_part.max(1);
    if let Some(fetch) = params.fetch.as_mut() {
        if !cfg.user_agent.is_empty() {
            fetch.user_agent = cfg.user_agent.clone();
        }
        if cfg.rate > 0.0 {
            fetch.default_rate_per_sec = cfg.rate;
        }
        fetch.allow_private_addresses |= cfg.allow_private_addresses;
    }
    let photos = app.paths.models.join("photos");
    ScrapeStep::new(params, photos.is_dir().then_some(photos)).context("starting the scrape")
}

/// The live source's settings: the outlets file, read and validated, and
/// the date range and quota.
fn live_spec(cfg: &ScrapeConfig) -> anyhow::Result<LiveSpec> {
    let day = |flag: &str, s: &str| -> anyhow::Result<Option<Day>> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        s.trim()
            .parse::<Day>()
            .map(Some)
            .map_err(|e| user_error(format!("scrape.{flag}: {e}")))
    };
    let since = day("since", &cfg.since)?;
    let until = day("until", &cfg.until)?;
    let spec = LiveSpec {
        outlets: OutletsConfig::load(&cfg.outlets)?,
        since,
        until,
        per_outlet: (cfg.per_outlet > 0).then_some(cfg.per_outlet),
    };
    spec.validate()?;
    Ok(spec)
}

/// When the last complete scrape is a `--retry-failed` run of exactly these
/// settings, a plain run adopts it: the retried tables are the current
/// output of these settings, and re-scraping from scratch (what a changed
/// fingerprint would do) would throw the retried rows away. `--force`
/// skips this and starts afresh.
fn adopt_completed_retry(app: &App, step: &mut ScrapeStep) -> anyhow::Result<()> {
    let Some(record) =
        anchor_core::ledger::read_record(app.out(), anchor_scrape::step::ScrapeStep::NAME)?
    else {
        return Ok(());
    };
    let mut retried = step.params()?;
    if let Some(obj) = retried.as_object_mut() {
        obj.insert("retry_failed".to_owned(), serde_json::Value::Bool(true));
    }
    if record.status == anchor_core::ledger::StepStatus::Complete && record.params == retried {
        step.set_retry_failed(true);
    }
    Ok(())
}

/// The step as configured (for `status`, `repair` and chains).
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    let mut step = build(app, &config(app, None)?, None, false)?;
    adopt_completed_retry(app, &mut step)?;
    Ok(Box::new(step))
}

/// `anchor scrape` with no flags beyond the step flags (for chains).
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    let mut step = build(app, &config(app, None)?, None, false)?;
    if !step_args.force {
        adopt_completed_retry(app, &mut step)?;
    }
    run_step(app, &step, step_args)
}

/// Runs the scrape step, then writes the demo ground truth and the per-host
/// statistics next to the step's stats.
pub fn run(args: &ScrapeArgs, app: &App) -> anyhow::Result<()> {
    if let Some(ScrapeAction::Extract(extract_args)) = &args.action {
        return extract(extract_args);
    }
    let cfg = config(app, Some(args))?;
    let mut step = build(app, &cfg, args.record_warc.clone(), args.retry_failed)?;
    if !args.retry_failed && !args.step.force {
        adopt_completed_retry(app, &mut step)?;
    }
    run_step(app, &step, &args.step)
}

fn run_step(app: &App, step: &ScrapeStep, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(step, step_args)?;
    let truth = app.out().join("demo_truth").join("demo_truth.parquet");
    step.write_demo_truth(&truth)
        .with_context(|| format!("writing {}", truth.display()))?;
    let reports = step.host_reports();
    if reports.is_empty() {
        // Up to date: nothing was fetched, keep the last run's statistics.
        return Ok(());
    }
    let stats = app.out().join("scrape").join("host_stats.json");
    if let Some(dir) = stats.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&stats, serde_json::to_string_pretty(&reports)?)
        .with_context(|| format!("writing {}", stats.display()))?;
    if !app.quiet {
        println!(
            "{:<28} {:>8} {:>6} {:>10} {:>8} {:>8}  outcomes",
            "host", "requests", "429s", "bytes", "p50 ms", "p95 ms"
        );
        for r in &reports {
            let outcomes: Vec<String> =
                r.outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{:<28} {:>8} {:>6} {:>10} {:>8.1} {:>8.1}  {}",
                r.host,
                r.requests,
                r.http_429,
                r.bytes,
                r.latency_p50_ms,
                r.latency_p95_ms,
                outcomes.join(" ")
            );
        }
    }
    Ok(())
}

/// Helpers of `anchor scrape`.
#[derive(Debug, clap::Subcommand)]
pub enum ScrapeAction {
    /// Print what an outlet adapter finds on a saved page: one JSON object per
    /// captioned image (image_url, caption, credit, alt, position, is_lead);
    /// the adapter used and its notes go to stderr.
    Extract(ExtractArgs),
}

/// Arguments of `anchor scrape extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// Adapter: guardian, bbc, usatoday, washingtonpost or nytimes; detected
    /// from the page URL's host when omitted (generic when unknown).
    #[arg(long)]
    pub outlet: Option<String>,
    /// The page's URL, used to resolve relative image URLs [default: file://<absolute path>].
    #[arg(long)]
    pub url: Option<String>,
    /// The saved HTML page.
    pub page: PathBuf,
}

fn extract(args: &ExtractArgs) -> anyhow::Result<()> {
    let outlet = match &args.outlet {
        Some(name) => Some(
            name.parse::<anchor_core::Outlet>()
                .map_err(|e| user_error(e.to_string()))?,
        ),
        None => None,
    };
    let bytes =
        std::fs::read(&args.page).with_context(|| format!("reading {}", args.page.display()))?;
    let html = String::from_utf8_lossy(&bytes);
    let page_url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let absolute = std::path::absolute(&args.page)
                .with_context(|| format!("resolving {}", args.page.display()))?;
            format!("file://{}", absolute.display())
        }
    };
    let page_url =
        url::Url::parse(&page_url).map_err(|e| user_error(format!("--url {page_url:?}: {e}")))?;
    let found = anchor_extract::extract(outlet, &page_url, &html);
    for image in &found.images {
        println!("{}", anchor_extract::to_json_line(image));
    }
    eprintln!("adapter: {}", found.adapter);
    for note in &found.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}
