//! `anchor sample`: images for the captions of a split under the paper's configurations,
//! into the `generations` table; or one image for a free prompt (`--prompt`, `--out-png`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anchor_core::step::{Outcome, Step};
use anchor_sample::{
    Configuration, ModelChoice, ModelSet, SampleParams, SamplePlan, SampleStep, SamplerSettings,
    SchedulerKind, WeightingKind, needed_loras,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::{App, user_error};
use crate::args::StepArgs;

/// `[sample]` in the config file: the sample step's plain settings under their library
/// names, then this tool's keys; every key is also a flag of `anchor sample`.
#[derive(Debug, Clone, Serialize)]
pub struct SampleConfig {
    /// Split, seeds, steps, guidance, images per part and per batch.
    #[serde(flatten)]
    pub plan: SamplePlan,
    /// The other keys.
    #[serde(flatten)]
    pub tool: SampleToolConfig,
}

/// The keys of `[sample]` besides the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleToolConfig {
    /// Configurations: base, weighting, lora, lora+weighting, safe, prefix.
    pub configurations: Vec<String>,
    /// At most this many captions (the first by id); 0 = all.
    pub max_captions: usize,
    /// `ddim` or `euler`.
    pub scheduler: String,
    /// `fixed` (every subject at 1.21) or `llm` (the annotator's weights).
    pub weighting: String,
    /// Image side in pixels; 0 = the train manifest's resolution, else 512.
    pub resolution: usize,
    /// Base diffusers folder; empty = the one in the train manifest.
    pub base: String,
    /// LoRA files by name (`lora`, `safe`); missing names come from the train manifest.
    pub lora: BTreeMap<String, String>,
    /// CLIP BPE vocabulary; empty = `<models>/open-clip/bpe_simple_vocab_16e6.txt.gz`.
    pub vocab: String,
}

impl Default for SampleToolConfig {
    fn default() -> Self {
        let p = SampleParams::paper();
        SampleToolConfig {
            configurations: p
                .configurations
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            max_captions: 0,
            scheduler: p.scheduler.as_str().into(),
            weighting: "fixed".into(),
            resolution: 0,
            base: String::new(),
            lora: BTreeMap::new(),
            vocab: String::new(),
        }
    }
}

/// Arguments of `anchor sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Comma-separated configurations: base, weighting, lora, lora+weighting, safe, prefix.
    /// With --prompt, the one configuration to use [default: base].
    #[arg(long, value_delimiter = ',')]
    pub configurations: Option<Vec<String>>,
    /// Base model: a diffusers folder with unet/, vae/, text_encoder/ [default: the train manifest's].
    #[arg(long, value_name = "PATH")]
    pub base: Option<PathBuf>,
    /// LoRA file as NAME=PATH (`lora`, `safe`) or a bare PATH for every LoRA configuration
    /// (repeatable) [default: the train manifest's].
    #[arg(long, value_name = "[NAME=]PATH")]
    pub lora: Vec<String>,
    /// Denoising steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale.
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Comma-separated noise seeds.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Sampler: ddim or euler.
    #[arg(long)]
    pub scheduler: Option<String>,
    /// Subject weights: fixed (1.21 each, the research code's) or llm (the annotator's).
    #[arg(long)]
    pub weighting: Option<String>,
    /// The split whose captions are sampled.
    #[arg(long)]
    pub split: Option<String>,
    /// At most this many captions (the first by id); 0 = all.
    #[arg(long)]
    pub max_captions: Option<usize>,
    /// Image side in pixels [default: the train manifest's, else 512].
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Images per part (the resume unit).
    #[arg(long)]
    pub images_per_part: Option<usize>,
    /// Captions denoised together in one UNet call (with classifier-free guidance, a call
    /// of twice as many rows); each image still depends on its own caption and seed only.
    #[arg(long, visible_alias = "batch")]
    pub batch_size: Option<usize>,
    /// CLIP BPE vocabulary file (bpe_simple_vocab_16e6.txt.gz).
    #[arg(long, value_name = "PATH")]
    pub vocab: Option<PathBuf>,
    /// Generate one image for this text instead of running the step (needs --out-png).
    #[arg(long, requires = "out_png")]
    pub prompt: Option<String>,
    /// Where --prompt's PNG goes.
    #[arg(long, value_name = "FILE", requires = "prompt")]
    pub out_png: Option<PathBuf>,
    /// With --prompt: a subject phrase of the prompt (repeatable), up-weighted by the
    /// weighting configurations and spelled out by `prefix`.
    #[arg(long, requires = "prompt")]
    pub subject: Vec<String>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[sample]` settings: config file, scale, `--set`, then flags.
pub fn config(app: &App, args: Option<&SampleArgs>) -> anyhow::Result<SampleConfig> {
    let mut section = app.doc.section_parts("sample")?;
    let mut cfg = SampleConfig {
        plan: section.part()?,
        tool: section.part()?,
    };
    section.finish()?;
    let Some(a) = args else { return Ok(cfg) };
    if let Some(v) = &a.configurations {
        cfg.tool.configurations = v.clone();
    }
    if let Some(v) = &a.base {
        cfg.tool.base = v.display().to_string();
    }
    for spec in &a.lora {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains('/') => (n.to_owned(), p.to_owned()),
            _ => ("*".to_owned(), spec.clone()),
        };
        cfg.tool.lora.insert(name, path);
    }
    macro_rules! take {
        ($part:ident: $($f:ident),*) => {
            $( if let Some(v) = &a.$f { cfg.$part.$f = v.clone(); } )*
        };
    }
    take!(plan: steps, guidance, seeds, split, images_per_part, batch_size);
    take!(tool: scheduler, weighting, max_captions, resolution);
    if let Some(v) = &a.vocab {
        cfg.tool.vocab = v.display().to_string();
    }
    Ok(cfg)
}

fn user(err: anchor_sample::Error) -> anyhow::Error {
    if err.is_user_error() {
        user_error(err.to_string())
    } else {
        err.into()
    }
}

fn configurations(cfg: &SampleConfig) -> anyhow::Result<Vec<Configuration>> {
    cfg.tool
        .configurations
        .iter()
        .map(|c| c.parse::<Configuration>().map_err(user))
        .collect()
}

fn vocab(app: &App, cfg: &SampleConfig) -> PathBuf {
    if cfg.tool.vocab.is_empty() {
        app.paths
            .models
            .join("open-clip")
            .join("bpe_simple_vocab_16e6.txt.gz")
    } else {
        PathBuf::from(&cfg.tool.vocab)
    }
}

fn choice(cfg: &SampleConfig) -> ModelChoice {
    ModelChoice {
        base: (!cfg.tool.base.is_empty()).then(|| PathBuf::from(&cfg.tool.base)),
        loras: cfg
            .tool
            .lora
            .iter()
            .map(|(k, v)| (k.clone(), PathBuf::from(v)))
            .collect(),
    }
}

fn resolution(cfg: &SampleConfig, models: &ModelSet) -> usize {
    match cfg.tool.resolution {
        0 => models
            .trained_resolution
            .unwrap_or(anchor_sample::model::DEFAULT_RESOLUTION),
        r => r,
    }
}

/// The step's parameters without the weights (resolution filled in later).
fn params(cfg: &SampleConfig, configurations: Vec<Configuration>) -> anyhow::Result<SampleParams> {
    Ok(SampleParams {
        configurations,
        plan: cfg.plan.clone(),
        max_captions: (cfg.tool.max_captions > 0).then_some(cfg.tool.max_captions),
        scheduler: cfg.tool.scheduler.parse::<SchedulerKind>().map_err(user)?,
        weighting: cfg.tool.weighting.parse::<WeightingKind>().map_err(user)?,
        resolution: cfg.tool.resolution,
    })
}

/// Builds the step from resolved settings; fails when the weights cannot be resolved.
pub fn build(app: &App, cfg: &SampleConfig) -> anyhow::Result<SampleStep> {
    let configurations = configurations(cfg)?;
    let mut params = params(cfg, configurations)?;
    let models = ModelSet::resolve(
        app.out(),
        &choice(cfg),
        &needed_loras(&params.configurations),
    )
    .map_err(user)?;
    params.resolution = resolution(cfg, &models);
    SampleStep::new(params, models, vocab(app, cfg), app.device()?).map_err(user)
}

/// The step as configured (for `status` and `repair`). Without weights (before any
/// training) it is still listed; running it reports what is missing.
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    let cfg = config(app, None)?;
    match build(app, &cfg) {
        Ok(step) => Ok(Box::new(step)),
        Err(err) => {
            let params = params(&cfg, configurations(&cfg)?)?;
            Ok(Box::new(SampleStep::blocked(params, format!("{err:#}"))))
        }
    }
}

/// `anchor sample` with no flags beyond the step flags (for chains).
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    let step = build(app, &config(app, None)?)?;
    run_step(app, &step, step_args)
}

/// Runs `anchor sample`.
pub fn run(args: &SampleArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    if let (Some(prompt), Some(out_png)) = (&args.prompt, &args.out_png) {
        return one_image(app, &cfg, args, prompt, out_png);
    }
    let step = build(app, &cfg)?;
    run_step(app, &step, &args.step)
}

fn run_step(app: &App, step: &SampleStep, step_args: &StepArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let outcome = app.run_step(step, step_args)?;
    let wall = started.elapsed().as_secs_f64();
    if let Outcome::Complete { stats, .. } = &outcome
        && !app.quiet
    {
        // Wall clock of this run (parts run in parallel, so the summed per-part
        // `generate_s` in stats.json overstates the time per image).
        let images = stats.counters.get("images").copied().unwrap_or(0);
        if images > 0 && wall > 0.0 {
            println!(
                "sample: {images} images in {wall:.1} s ({:.2} images/s, model loading included)",
                images as f64 / wall
            );
        }
        for key in [
            "no_subjects",
            "subjects_row_missing",
            "subjects_caption_changed",
            "truncated",
        ] {
            if let Some(n) = stats.counters.get(key).filter(|n| **n > 0) {
                println!("sample: {key} {n}");
            }
        }
    }
    Ok(())
}

fn one_image(
    app: &App,
    cfg: &SampleConfig,
    args: &SampleArgs,
    prompt: &str,
    out_png: &std::path::Path,
) -> anyhow::Result<()> {
    let configurations = configurations(cfg)?;
    let configuration = match (&args.configurations, configurations.as_slice()) {
        (None, _) => Configuration::Base,
        (Some(_), [one]) => *one,
        (Some(_), _) => {
            return Err(user_error(
                "--prompt takes exactly one --configurations value",
            ));
        }
    };
    let needed = needed_loras(&[configuration]);
    let models = ModelSet::resolve(app.out(), &choice(cfg), &needed).map_err(user)?;
    let seed = cfg.plan.seeds.first().copied().unwrap_or(42);
    let settings = SamplerSettings {
        steps: cfg.plan.steps,
        guidance: cfg.plan.guidance,
        scheduler: cfg.tool.scheduler.parse::<SchedulerKind>().map_err(user)?,
        resolution: resolution(cfg, &models),
    };
    let pipeline =
        anchor_sample::Pipeline::load(&models, &vocab(app, cfg), &app.device()?).map_err(user)?;
    let (png, text, truncated) = anchor_sample::generate_png(
        &pipeline,
        configuration,
        prompt,
        &args.subject,
        seed,
        &settings,
    )
    .map_err(user)?;
    if let Some(dir) = out_png.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out_png, &png).with_context(|| format!("writing {}", out_png.display()))?;
    if !app.quiet {
        println!(
            "sample: wrote {} ({configuration}, seed {seed}, {} steps, {}x{} px{}) for {text:?}",
            out_png.display(),
            settings.steps,
            settings.resolution,
            settings.resolution,
            if truncated {
                ", prompt truncated to 77 tokens"
            } else {
                ""
            }
        );
    }
    Ok(())
}
