//! `anchor train`: fine-tune SAFE's LoRAs (`lora`, `safe`) on the train split; without
//! `--base`, first train the embedded demo base (a small VAE and UNet, not Stable Diffusion).

use std::path::PathBuf;
use std::sync::Arc;

use anchor_core::step::{Step, StepId};
use anchor_train::parallel::ProcessGroup;
use anchor_train::trainer::{GradientSync, Schedule};
use anchor_train::{
    DemoSettings, FIXED_SUBJECT_WEIGHT, LoraConfig, Precision, SubjectWeighting, TrainSettings,
    TrainStep, TrainedLora, ValidationSettings,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::args::StepArgs;

/// `[train]` in the config file: the training schedule under its library names, then this
/// tool's keys; most keys are also flags of `anchor train`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    /// Steps, batches, learning rate, warm-up and grad-norm clip.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The other keys.
    #[serde(flatten)]
    pub tool: TrainToolConfig,
}

/// The keys of `[train]` besides the schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainToolConfig {
    /// Configurations to train: `lora`, `safe`.
    pub configurations: Vec<String>,
    /// A diffusers folder (SD 1.5/2.1); empty = train the demo base.
    pub base: String,
    /// Image side in pixels (512 for SD 1.5; the demo base trains at 64).
    pub resolution: usize,
    /// LoRA rank.
    pub rank: usize,
    /// LoRA alpha; 0 = the rank (scale 1).
    pub alpha: f64,
    /// Min-SNR-gamma; 0 = plain MSE.
    pub min_snr_gamma: f32,
    /// Seed.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// `fixed` (every subject 1.21, compel `++`) or `llm` (the subjects table's weights).
    pub weighting: String,
    /// The weight of `fixed`.
    pub fixed_weight: f32,
    /// Demo base: VAE steps.
    pub demo_vae_steps: u64,
    /// Demo base: VAE learning rate.
    pub demo_vae_lr: f64,
    /// Demo base: UNet steps.
    pub demo_unet_steps: u64,
    /// Demo base: UNet learning rate.
    pub demo_unet_lr: f64,
    /// Demo base: batch size.
    pub demo_batch_size: usize,
    /// Compute dtype of the frozen UNet while training the LoRAs: f32, f16 (dynamic loss
    /// scaling) or bf16. The adapters keep f32 master weights either way.
    pub precision: String,
    /// Train every UNet weight instead of LoRA adapters (f32); each configuration then
    /// writes a whole diffusers UNet.
    pub full_finetune: bool,
    /// Prompts sampled while each LoRA trains (diffusers' `--validation_prompt`), written
    /// to `validation/step-NNNNNNNN/NN.png` beside its weights; empty = none.
    pub validation_prompts: Vec<String>,
    /// Steps between validation images; 0 = after the last step only.
    pub validation_every: u64,
}

impl Default for TrainToolConfig {
    fn default() -> Self {
        TrainToolConfig {
            configurations: vec!["lora".into(), "safe".into()],
            base: String::new(),
            resolution: 64,
            rank: 4,
            alpha: 0.0,
            min_snr_gamma: 0.0,
            seed: 42,
            checkpoint_every: 25,
            weighting: "fixed".into(),
            fixed_weight: FIXED_SUBJECT_WEIGHT,
            demo_vae_steps: 400,
            demo_vae_lr: 1e-2,
            demo_unet_steps: 600,
            demo_unet_lr: 1e-3,
            demo_batch_size: 8,
            precision: "f32".into(),
            full_finetune: false,
            validation_prompts: Vec::new(),
            validation_every: 0,
        }
    }
}

/// Arguments of `anchor train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Configurations to train, comma-separated: lora, safe.
    #[arg(long, value_delimiter = ',')]
    pub configurations: Option<Vec<String>>,
    /// A diffusers folder (e.g. stable-diffusion-v1-5); without it the demo base is trained.
    #[arg(long, value_name = "PATH")]
    pub base: Option<PathBuf>,
    /// LoRA rank.
    #[arg(long)]
    pub rank: Option<usize>,
    /// Optimiser steps per LoRA.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Image side in pixels.
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Subject weighting of `safe`: fixed (1.21) or llm.
    #[arg(long, value_parser = ["fixed", "llm"])]
    pub weighting: Option<String>,
    /// Compute dtype of the LoRA training: f32, f16 or bf16 (meant for CUDA; on the CPU
    /// f16/bf16 run, but slower than f32).
    #[arg(long, value_parser = ["f32", "f16", "bf16"])]
    pub precision: Option<String>,
    /// Fine-tune every UNet weight instead of LoRA adapters (f32 only); writes
    /// <out>/train/models/full/<configuration>/unet/.
    #[arg(long)]
    pub full: bool,
    /// A prompt to sample while each LoRA trains (repeat for several); the images go to
    /// <out>/train/models/<lora|full>/<configuration>/validation/step-NNNNNNNN/.
    #[arg(long = "validation-prompt", value_name = "TEXT")]
    pub validation_prompts: Vec<String>,
    /// Steps between validation images (0 = after the last step only).
    #[arg(long, value_name = "N")]
    pub validation_every: Option<u64>,
    /// Write the loss curves of train_log to <out>/train/loss.png.
    #[arg(long)]
    pub plot: bool,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[train]` settings: config file, scale, `--set`, then flags.
pub fn config(app: &App, args: Option<&TrainArgs>) -> anyhow::Result<TrainConfig> {
    let mut section = app.doc.section_parts("train")?;
    let mut cfg = TrainConfig {
        schedule: section.part()?,
        tool: section.part()?,
    };
    section.finish()?;
    if let Some(a) = args {
        if let Some(c) = &a.configurations {
            cfg.tool.configurations = c.clone();
        }
        if let Some(b) = &a.base {
            cfg.tool.base = b.display().to_string();
        }
        if let Some(r) = a.rank {
            cfg.tool.rank = r;
        }
        if let Some(s) = a.steps {
            cfg.schedule.steps = s;
        }
        if let Some(lr) = a.lr {
            cfg.schedule.lr = lr;
        }
        if let Some(r) = a.resolution {
            cfg.tool.resolution = r;
        }
        if let Some(w) = &a.weighting {
            cfg.tool.weighting = w.clone();
        }
        if let Some(p) = &a.precision {
            cfg.tool.precision = p.clone();
        }
        if a.full {
            cfg.tool.full_finetune = true;
        }
        if !a.validation_prompts.is_empty() {
            cfg.tool
                .validation_prompts
                .clone_from(&a.validation_prompts);
        }
        if let Some(n) = a.validation_every {
            cfg.tool.validation_every = n;
        }
    }
    Ok(cfg)
}

/// Resolves the config into the library's settings.
pub fn settings(app: &App, cfg: &TrainConfig) -> anyhow::Result<TrainSettings> {
    let configurations = cfg
        .tool
        .configurations
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| TrainedLora::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let weighting = match cfg.tool.weighting.as_str() {
        "fixed" => SubjectWeighting::Fixed(cfg.tool.fixed_weight),
        "llm" => SubjectWeighting::Llm,
        other => anyhow::bail!("train.weighting {other:?}: expected fixed or llm"),
    };
    let alpha = if cfg.tool.alpha > 0.0 {
        cfg.tool.alpha
    } else {
        cfg.tool.rank as f64
    };
    Ok(TrainSettings {
        configurations,
        base: (!cfg.tool.base.is_empty()).then(|| PathBuf::from(&cfg.tool.base)),
        resolution: cfg.tool.resolution,
        lora: LoraConfig {
            rank: cfg.tool.rank,
            alpha,
        },
        schedule: cfg.schedule.clone(),
        min_snr_gamma: (cfg.tool.min_snr_gamma > 0.0).then_some(cfg.tool.min_snr_gamma),
        seed: cfg.tool.seed,
        checkpoint_every: cfg.tool.checkpoint_every,
        weighting,
        demo: DemoSettings {
            vae_steps: cfg.tool.demo_vae_steps,
            vae_lr: cfg.tool.demo_vae_lr,
            vae_kl_weight: 1e-3,
            unet_steps: cfg.tool.demo_unet_steps,
            unet_lr: cfg.tool.demo_unet_lr,
            batch_size: cfg.tool.demo_batch_size,
        },
        vocab: app
            .paths
            .models
            .join("open-clip")
            .join("bpe_simple_vocab_16e6.txt.gz"),
        precision: Precision::parse(&cfg.tool.precision)?,
        full_finetune: cfg.tool.full_finetune,
        validation: ValidationSettings {
            prompts: cfg
                .tool
                .validation_prompts
                .iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            every: cfg.tool.validation_every,
        },
    })
}

/// The step as configured (for `status`, `repair` and chains).
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    let cfg = config(app, None)?;
    Ok(Box::new(TrainStep::on_device(
        settings(app, &cfg)?,
        app.device()?,
    )?))
}

/// `anchor train` with only the step flags (for chains).
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    let cfg = config(app, None)?;
    run_step(app, &cfg, step_args, false)
}

/// Runs `anchor train`.
pub fn run(args: &TrainArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    run_step(app, &cfg, &args.step, args.plot)
}

/// The data-parallel group of a launch: NCCL on CUDA devices when the build has it, else the
/// launch's own connections through rank 0.
fn gradient_group(
    group: ProcessGroup,
    device: &candle_core::Device,
) -> anyhow::Result<Arc<dyn GradientSync + Send>> {
    #[cfg(feature = "nccl")]
    if device.is_cuda() {
        return Ok(Arc::new(anchor_train::parallel::nccl::NcclGroup::new(
            group, device,
        )?));
    }
    let _ = device;
    Ok(Arc::new(group))
}

fn run_step(app: &App, cfg: &TrainConfig, step_args: &StepArgs, plot: bool) -> anyhow::Result<()> {
    let mut step = TrainStep::on_device(settings(app, cfg)?, app.device()?)?;
    // A data-parallel launch (torchrun's variables): rank 0 runs the step, the others
    // follow it.
    if let Some(group) = ProcessGroup::from_env()? {
        step = step.in_group(gradient_group(group, &app.device()?)?);
    }
    if step.rank() > 0 {
        let parts = step
            .follow(app.out())
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("train rank {}", step.rank()))?;
        if !app.quiet {
            println!(
                "train rank {}: trained {parts} parts with rank 0",
                step.rank()
            );
        }
        return Ok(());
    }
    app.run_step(&step, step_args)?;
    step.release_followers()?;
    let root = anchor_core::ledger::step_dir(app.out(), anchor_train::step::TrainStep::NAME);
    if !app.quiet {
        for (part, seconds, steps) in step.timings() {
            if steps > 0 && seconds > 0.0 {
                println!(
                    "train {part}: {steps} steps in {seconds:.1} s ({:.2} steps/s)",
                    steps as f64 / seconds
                );
            }
        }
        let vae = root.join("work/vae/done.json");
        if let Ok(bytes) = std::fs::read(&vae)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            let f = &v["facts"];
            println!(
                "train vae: reconstruction MSE {:.4} at init, {:.4} trained (on {} images)",
                f["reconstruction_mse_init"].as_f64().unwrap_or(f64::NAN),
                f["reconstruction_mse_trained"].as_f64().unwrap_or(f64::NAN),
                f["eval_images"].as_u64().unwrap_or(0)
            );
        }
        let manifest = root.join("models/manifest.json");
        if manifest.is_file() {
            println!("train: models in {}", manifest.display());
        }
    }
    if plot {
        let curves = anchor_train::plot::read_curves(app.out())?;
        let png = root.join("loss.png");
        anchor_train::plot::write_loss_png(&png, &curves)
            .with_context(|| format!("writing {}", png.display()))?;
        if !app.quiet {
            println!("train: loss curves in {}", png.display());
        }
    }
    Ok(())
}
