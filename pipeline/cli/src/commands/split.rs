//! `anchor split`: `pairs_curated` → `splits` (the `split` step), the Hugging Face export
//! (`export`) and the dataset card (`card`).

use anchor_core::step::Step;
use anchor_filters::crop::CropParams;
use anchor_split::card::CardStep;
use anchor_split::export::{ExportParams, ExportStep};
use anchor_split::split::{SplitBy, SplitParams, SplitStep};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::args::StepArgs;

/// `[split]` in the config file: the split step's parameters under their library names,
/// then the export's keys.
#[derive(Debug, Clone, Serialize)]
pub struct SplitConfig {
    /// Ratios, hash or date, and whether to reassign.
    #[serde(flatten)]
    pub split: SplitParams,
    /// The published images.
    #[serde(flatten)]
    pub export: ExportConfig,
}

/// The keys of `[split]` that shape the export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportConfig {
    /// Side of the published square images in pixels.
    pub image_size: u32,
    /// JPEG quality of the published images.
    pub jpeg_quality: u8,
    /// Publish the original bytes instead of the salient-square crops.
    pub original_images: bool,
}

impl Default for ExportConfig {
    fn default() -> Self {
        let crop = CropParams::default();
        ExportConfig {
            image_size: crop.size,
            jpeg_quality: crop.jpeg_quality,
            original_images: false,
        }
    }
}

/// Arguments of `anchor split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// `hash` (default) or `date` (temporal: the newest articles are test).
    #[arg(long, value_parser = ["hash", "date"])]
    pub by: Option<String>,
    /// Ignore the remembered assignment and re-hash every group.
    #[arg(long)]
    pub reassign: bool,
    /// Publish the original image bytes instead of the 512 px salient crops.
    #[arg(long)]
    pub original_images: bool,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[split]` settings.
pub fn config(app: &App, args: Option<&SplitArgs>) -> anyhow::Result<SplitConfig> {
    let mut section = app.doc.section_parts("split")?;
    let mut cfg = SplitConfig {
        split: section.part()?,
        export: section.part()?,
    };
    section.finish()?;
    if let Some(a) = args {
        match a.by.as_deref() {
            Some("date") => cfg.split.by = SplitBy::Date,
            Some("hash") => cfg.split.by = SplitBy::Hash,
            _ => {}
        }
        cfg.split.reassign |= a.reassign;
        cfg.export.original_images |= a.original_images;
    }
    Ok(cfg)
}

fn build_split(cfg: &SplitConfig) -> anyhow::Result<SplitStep> {
    Ok(SplitStep::new(cfg.split.clone()))
}

fn build_export(cfg: &SplitConfig) -> anyhow::Result<ExportStep> {
    let cfg = &cfg.export;
    if !(1..=100).contains(&cfg.jpeg_quality) || cfg.image_size == 0 {
        anyhow::bail!(
            "split.jpeg_quality must be 1..=100 and split.image_size > 0 (got {} and {})",
            cfg.jpeg_quality,
            cfg.image_size
        );
    }
    Ok(ExportStep::new(ExportParams {
        crop: CropParams {
            size: cfg.image_size,
            jpeg_quality: cfg.jpeg_quality,
        },
        original_images: cfg.original_images,
    }))
}

/// `split` for status/repair/chains.
pub fn build_split_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build_split(&config(app, None)?)?))
}

/// `export` for status/repair/chains.
pub fn build_export_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build_export(&config(app, None)?)?))
}

/// `card` for status/repair/chains.
pub fn build_card_from_config(_app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(CardStep))
}

/// Runs `split` as configured (chains).
pub fn run_split_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build_split(&config(app, None)?)?, step_args)?;
    Ok(())
}

/// Runs `export` as configured (chains).
pub fn run_export_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&build_export(&config(app, None)?)?, step_args)?;
    Ok(())
}

/// Runs `card` (chains).
pub fn run_card_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    app.run_step(&CardStep, step_args)?;
    if !app.quiet {
        println!(
            "dataset: {}",
            anchor_split::export::dataset_dir(app.out()).display()
        );
    }
    Ok(())
}

/// `anchor split`: split, export, card.
pub fn run(args: &SplitArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    if !app.run_step_of_many(&build_split(&cfg)?, &args.step)? {
        return Ok(());
    }
    if !app.run_step_of_many(&build_export(&cfg)?, &args.step)? {
        return Ok(());
    }
    run_card_configured(app, &args.step)
}
