//! `anchor curate`: `pairs` → `pairs_scored` (the parallel `score` step) → `pairs_curated`
//! (the global `curate` step), then, on the demo source, the near-duplicate calibration report.
//! With `--clip DIR` (or `[curate] clip`), `score` also fills the CLIP columns; without, it
//! says that they are off.

use std::path::{Path, PathBuf};

use anchor_clip::ClipWeights;
use anchor_core::step::Step;
use anchor_curate::clip::ClipScoring;
use anchor_curate::curate::{CurateParams, CurateStep};
use anchor_curate::score::{ScoreParams, ScoreStep};
use anchor_filters::caption::CaptionRules;
use anchor_filters::nsfw_runtime::NsfwRuntime;
use anchor_filters::quality::QualityThresholds;
use serde::{Deserialize, Serialize};

use crate::app::{App, user_error};
use crate::args::StepArgs;

/// `[curate]` in the config file: the keys of this tool, then the quality thresholds and
/// caption rules of the curate step under their library names.
#[derive(Debug, Clone, Serialize)]
pub struct CurateConfig {
    /// Model files and the NSFW and CLIP settings.
    #[serde(flatten)]
    pub tool: CurateToolConfig,
    /// Image quality thresholds.
    #[serde(flatten)]
    pub quality: QualityThresholds,
    /// Caption length and language rules.
    #[serde(flatten)]
    pub caption: CaptionRules,
}

/// The keys of `[curate]` that are not a library's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CurateToolConfig {
    /// open_nsfw ONNX file; empty = `<paths.models>/open-nsfw.onnx`.
    pub nsfw_model: String,
    /// Drop at NSFW score ≥ this.
    pub max_nsfw: f64,
    /// `ort` (ONNX Runtime, the default: about 6x faster) or `tract` (pure Rust).
    pub nsfw_runtime: String,
    /// ONNX Runtime library; empty = `<paths.models>/onnxruntime/libonnxruntime.so.<version>`
    /// as `scripts/fetch-models.sh onnxruntime` caches it.
    pub onnxruntime_lib: String,
    /// pHash Hamming radius of near duplicates.
    pub near_duplicate_radius: u32,
    /// CLIP BPE vocabulary; empty = `<paths.models>/open-clip/bpe_simple_vocab_16e6.txt.gz`.
    pub clip_vocab: String,
    /// CLIP folder (transformers layout: config.json + model.safetensors) for the
    /// `clip_similarity` and `clip_iqa` columns; empty = none (the columns are null).
    pub clip: String,
    /// Drop below this CLIP-IQA ("Good photo." probability); 0 = off. Needs `clip`.
    pub min_clip_iqa: f64,
    /// Drop below this CLIP image–caption cosine; 0 = off. Needs `clip`.
    pub min_clip_similarity: f64,
}

impl Default for CurateToolConfig {
    fn default() -> Self {
        CurateToolConfig {
            nsfw_model: String::new(),
            max_nsfw: f64::from(anchor_filters::nsfw::DEFAULT_THRESHOLD),
            nsfw_runtime: "ort".into(),
            onnxruntime_lib: String::new(),
            near_duplicate_radius: anchor_filters::dedup::DEFAULT_RADIUS,
            clip_vocab: String::new(),
            clip: String::new(),
            min_clip_iqa: 0.0,
            min_clip_similarity: 0.0,
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
    /// CLIP folder in the Hugging Face transformers layout (config.json, model.safetensors;
    /// e.g. openai/clip-vit-base-patch32): fills `clip_similarity` (image vs. raw caption)
    /// and `clip_iqa` (CLIP-IQA, torchmetrics' "Good photo."/"Bad photo."). Without it both
    /// columns are null.
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Drop below this CLIP-IQA (needs --clip); 0 = off.
    #[arg(long, value_name = "X")]
    pub min_clip_iqa: Option<f64>,
    /// Drop below this CLIP image–caption cosine (needs --clip); 0 = off.
    #[arg(long, value_name = "X")]
    pub min_clip_similarity: Option<f64>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[curate]` settings.
pub fn config(app: &App, args: Option<&CurateArgs>) -> anyhow::Result<CurateConfig> {
    let mut section = app.doc.section_parts("curate")?;
    let mut cfg = CurateConfig {
        tool: section.part()?,
        quality: section.part()?,
        caption: section.part()?,
    };
    section.finish()?;
    if let Some(a) = args {
        if let Some(v) = a.max_nsfw {
            cfg.tool.max_nsfw = v;
        }
        if let Some(v) = &a.nsfw_runtime {
            cfg.tool.nsfw_runtime.clone_from(v);
        }
        if let Some(v) = a.near_duplicate_radius {
            cfg.tool.near_duplicate_radius = v;
        }
        if let Some(v) = a.min_shortest_side {
            cfg.quality.min_shortest_side = v;
        }
        if let Some(v) = &a.clip {
            cfg.tool.clip = v.display().to_string();
        }
        if let Some(v) = a.min_clip_iqa {
            cfg.tool.min_clip_iqa = v;
        }
        if let Some(v) = a.min_clip_similarity {
            cfg.tool.min_clip_similarity = v;
        }
    }
    Ok(cfg)
}

/// The BPE vocabulary captions are tokenized with (and a CLIP folder without `merges.txt`).
pub(crate) fn clip_vocab(app: &App, cfg: &CurateConfig) -> PathBuf {
    path_or(
        app,
        &cfg.tool.clip_vocab,
        "open-clip/bpe_simple_vocab_16e6.txt.gz",
    )
}

/// The CLIP weights as configured, checked and hashed; `None` when `clip` is empty. CLIP
/// thresholds without weights are refused rather than silently ignored.
fn clip_scoring(app: &App, cfg: &CurateConfig) -> anyhow::Result<Option<ClipScoring>> {
    if cfg.tool.clip.is_empty() {
        for (key, v) in [
            ("min_clip_iqa", cfg.tool.min_clip_iqa),
            ("min_clip_similarity", cfg.tool.min_clip_similarity),
        ] {
            if v != 0.0 {
                return Err(user_error(format!(
                    "[curate] {key} = {v} needs CLIP weights: pass --clip DIR (or set [curate] clip), \
                     or set it to 0"
                )));
            }
        }
        return Ok(None);
    }
    ClipWeights::hashed(Path::new(&cfg.tool.clip), &clip_vocab(app, cfg))
        .map(|weights| Some(ClipScoring::new(weights)))
        .map_err(|e| user_error(format!("--clip: {e}")))
}

/// What `score` says about its CLIP columns.
fn clip_note(step: &ScoreStep) -> String {
    match &step.params_ref().clip {
        Some(w) => format!(
            "score: CLIP scores on (clip_similarity, clip_iqa) from {} (sha256 {})",
            w.weights.dir.display(),
            w.weights.sha256
        ),
        None => "score: CLIP scores off (pass --clip DIR or set [curate] clip to fill \
                 clip_similarity and clip_iqa; they are null)"
            .to_owned(),
    }
}

/// Runs the score step; `false` when this shard is done but the step is not complete.
fn run_score_step(app: &App, step: &ScoreStep, step_args: &StepArgs) -> anyhow::Result<bool> {
    let complete = app.run_step_of_many(step, step_args)?;
    if !app.quiet {
        println!("{}", clip_note(step));
    }
    Ok(complete)
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
    match cfg.tool.nsfw_runtime.as_str() {
        "tract" => Ok(NsfwRuntime::Tract),
        "ort" => Ok(NsfwRuntime::Ort {
            library: path_or(app, &cfg.tool.onnxruntime_lib, ONNXRUNTIME_LIB),
            // One session serves every part (its run is exclusive), so it gets every core.
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }),
        other => anyhow::bail!("[curate] nsfw_runtime = {other:?}: expected \"ort\" or \"tract\""),
    }
}

/// The `score` step as configured.
pub fn build_score(app: &App, cfg: &CurateConfig) -> anyhow::Result<ScoreStep> {
    let mut params = ScoreParams::new(
        path_or(app, &cfg.tool.nsfw_model, "open-nsfw.onnx"),
        nsfw_runtime(app, cfg)?,
    );
    params.clip = clip_scoring(app, cfg)?;
    Ok(ScoreStep::new(params))
}

/// The `curate` step as configured.
pub fn build_curate(app: &App, cfg: &CurateConfig) -> anyhow::Result<CurateStep> {
    let mut params = CurateParams::new(clip_vocab(app, cfg));
    params.quality = cfg.quality.clone();
    params.max_nsfw = cfg.tool.max_nsfw;
    params.caption = cfg.caption.clone();
    params.near_duplicate_radius = cfg.tool.near_duplicate_radius;
    params.min_clip_iqa = cfg.tool.min_clip_iqa;
    params.min_clip_similarity = cfg.tool.min_clip_similarity;
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
    run_score_step(app, &build_score(app, &config(app, None)?)?, step_args).map(|_| ())
}

/// Runs `curate` as configured (chains), then the calibration report on demo data.
pub fn run_curate_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build_curate(app, &config(app, None)?)?, step_args)?;
    super::calibrate::report_if_demo(app)
}

/// `anchor curate`: both steps, then the calibration report.
pub fn run(args: &CurateArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    if !run_score_step(app, &build_score(app, &cfg)?, &args.step)? {
        return Ok(());
    }
    if !app.run_step_of_many(&build_curate(app, &cfg)?, &args.step)? {
        return Ok(());
    }
    super::calibrate::report_if_demo(app)
}
