//! `anchor curate`: `pairs` → `pairs_scored` (the parallel `score` step) → `pairs_curated`
//! (the global `curate` step), then, on the demo source, the near-duplicate calibration report.

use std::path::PathBuf;

use anchor_core::step::Step;
use anchor_curate::caption::CaptionRules;
use anchor_curate::nsfw_runtime::NsfwRuntime;
use anchor_curate::quality::QualityThresholds;
use anchor_curate_steps::curate::{CurateParams, CurateStep};
use anchor_curate_steps::score::{ScoreParams, ScoreStep};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::args::StepArgs;

/// `[curate]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurateConfig {
    /// open_nsfw ONNX file; empty = `<paths.models>/open-nsfw.onnx`.
    pub nsfw_model: String,
    /// Drop at NSFW score ≥ this.
    pub max_nsfw: f64,
    /// `ort` (ONNX Runtime, the default: about 6x faster) or `tract` (pure Rust).
    pub nsfw_runtime: String,
    /// ONNX Runtime library; empty = `<paths.models>/onnxruntime/libonnxruntime.so.<version>`
    /// as `scripts/fetch-models.sh onnxruntime` caches it.
    pub onnxruntime_lib: String,
    /// Minimum shortest side in pixels.
    pub min_shortest_side: u32,
    /// Maximum long/short side ratio.
    pub max_aspect_ratio: f64,
    /// Minimum variance of the Laplacian.
    pub min_blur: f64,
    /// Minimum grayscale entropy in bits.
    pub min_entropy: f64,
    /// Minimum cleanvision dark score.
    pub min_dark: f64,
    /// Minimum cleanvision light score.
    pub min_light: f64,
    /// Drop grayscale photos stored as RGB.
    pub drop_grayscale: bool,
    /// Caption word bounds.
    pub min_words: usize,
    /// Caption word bounds.
    pub max_words: usize,
    /// Accepted caption languages (ISO 639-3); empty accepts all.
    pub languages: Vec<String>,
    /// pHash Hamming radius of near duplicates.
    pub near_duplicate_radius: u32,
    /// CLIP BPE vocabulary; empty = `<paths.models>/open-clip/bpe_simple_vocab_16e6.txt.gz`.
    pub clip_vocab: String,
}

impl Default for CurateConfig {
    fn default() -> Self {
        let q = QualityThresholds::default();
        let c = CaptionRules::default();
        CurateConfig {
            nsfw_model: String::new(),
            max_nsfw: f64::from(anchor_curate::nsfw::DEFAULT_THRESHOLD),
            nsfw_runtime: "ort".into(),
            onnxruntime_lib: String::new(),
            min_shortest_side: q.min_shortest_side,
            max_aspect_ratio: q.max_aspect_ratio,
            min_blur: q.min_blur,
            min_entropy: q.min_entropy,
            min_dark: q.min_dark,
            min_light: q.min_light,
            drop_grayscale: q.drop_grayscale,
            min_words: c.min_words,
            max_words: c.max_words,
            languages: c.languages,
            near_duplicate_radius: anchor_curate::dedup::DEFAULT_RADIUS,
            clip_vocab: String::new(),
        }
    }
}

/// Arguments of `anchor curate`.
#[derive(Debug, clap::Args)]
pub struct CurateArgs {
    /// Drop at NSFW score ≥ this.
    #[arg(long)]
    pub max_nsfw: Option<f64>,
    /// Runtime of the NSFW model: `ort` (ONNX Runtime) or `tract` (pure Rust).
    #[arg(long, value_parser = ["ort", "tract"])]
    pub nsfw_runtime: Option<String>,
    /// pHash Hamming radius of near duplicates.
    #[arg(long)]
    pub near_duplicate_radius: Option<u32>,
    /// Minimum shortest side in pixels.
    #[arg(long)]
    pub min_shortest_side: Option<u32>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[curate]` settings.
pub fn config(app: &App, args: Option<&CurateArgs>) -> anyhow::Result<CurateConfig> {
    let mut cfg: CurateConfig = app.doc.section("curate")?;
    if let Some(a) = args {
        if let Some(v) = a.max_nsfw {
            cfg.max_nsfw = v;
        }
        if let Some(v) = &a.nsfw_runtime {
            cfg.nsfw_runtime.clone_from(v);
        }
        if let Some(v) = a.near_duplicate_radius {
            cfg.near_duplicate_radius = v;
        }
        if let Some(v) = a.min_shortest_side {
            cfg.min_shortest_side = v;
        }
    }
    Ok(cfg)
}

fn path_or(app: &App, value: &str, default: &str) -> PathBuf {
    if value.is_empty() {
        app.paths.models.join(default)
    } else {
        PathBuf::from(value)
    }
}

/// The file `scripts/fetch-models.sh onnxruntime` caches (data/models.tsv).
const ONNXRUNTIME_LIB: &str = "onnxruntime/libonnxruntime.so.1.32.0";

/// The NSFW runtime as configured.
pub(crate) fn nsfw_runtime(app: &App, cfg: &CurateConfig) -> anyhow::Result<NsfwRuntime> {
    match cfg.nsfw_runtime.as_str() {
        "tract" => Ok(NsfwRuntime::Tract),
        "ort" => Ok(NsfwRuntime::Ort {
            library: path_or(app, &cfg.onnxruntime_lib, ONNXRUNTIME_LIB),
            // One session serves every part (its run is exclusive), so it gets every core.
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }),
        other => anyhow::bail!("[curate] nsfw_runtime = {other:?}: expected \"ort\" or \"tract\""),
    }
}

/// The `score` step as configured.
pub fn build_score(app: &App, cfg: &CurateConfig) -> anyhow::Result<ScoreStep> {
    Ok(ScoreStep::new(ScoreParams::new(
        path_or(app, &cfg.nsfw_model, "open-nsfw.onnx"),
        nsfw_runtime(app, cfg)?,
    )))
}

/// The `curate` step as configured.
pub fn build_curate(app: &App, cfg: &CurateConfig) -> anyhow::Result<CurateStep> {
    let vocab = path_or(
        app,
        &cfg.clip_vocab,
        "open-clip/bpe_simple_vocab_16e6.txt.gz",
    );
    let mut params = CurateParams::new(vocab);
    params.quality = QualityThresholds {
        min_shortest_side: cfg.min_shortest_side,
        max_aspect_ratio: cfg.max_aspect_ratio,
        min_blur: cfg.min_blur,
        min_entropy: cfg.min_entropy,
        min_dark: cfg.min_dark,
        min_light: cfg.min_light,
        drop_grayscale: cfg.drop_grayscale,
    };
    params.max_nsfw = cfg.max_nsfw;
    params.caption = CaptionRules {
        min_words: cfg.min_words,
        max_words: cfg.max_words,
        languages: cfg.languages.clone(),
    };
    params.near_duplicate_radius = cfg.near_duplicate_radius;
    Ok(CurateStep::new(params))
}

/// `score` for status/repair/chains.
pub fn build_score_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build_score(app, &config(app, None)?)?))
}

/// `curate` for status/repair/chains.
pub fn build_curate_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build_curate(app, &config(app, None)?)?))
}

/// Runs `score` as configured (chains).
pub fn run_score_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build_score(app, &config(app, None)?)?, step_args)?;
    Ok(())
}

/// Runs `curate` as configured (chains), then the calibration report on demo data.
pub fn run_curate_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build_curate(app, &config(app, None)?)?, step_args)?;
    super::calibrate::report_if_demo(app)
}

/// `anchor curate`: both steps, then the calibration report.
pub fn run(args: &CurateArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    app.run_step(&build_score(app, &cfg)?, &args.step)?;
    app.run_step(&build_curate(app, &cfg)?, &args.step)?;
    super::calibrate::report_if_demo(app)
}
