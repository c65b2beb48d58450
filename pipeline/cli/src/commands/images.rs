//! `anchor hash FILE...` and `anchor measure FILE...`: the curate measurements of single image
//! files, for users tuning thresholds and for checking hashes against Python `imagehash`.

use std::path::PathBuf;

use anchor_clip::ClipWeights;
use anchor_curate::clip::{ClipScorer, similarity_caption};
use anchor_filters::decode::{self, DecodeLimits};
use anchor_filters::nsfw;
use anchor_filters::nsfw_runtime::NsfwScorer;
use anchor_filters::{hash, quality};
use anyhow::Context;

use crate::app::{App, user_error};

/// Arguments of `anchor hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `anchor measure`.
#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// open_nsfw ONNX file [default: <paths.models>/open-nsfw.onnx].
    #[arg(long)]
    pub nsfw_model: Option<PathBuf>,
    /// Runtime of the NSFW model [default: `[curate] nsfw_runtime`, i.e. ort].
    #[arg(long, value_parser = ["ort", "tract"])]
    pub nsfw_runtime: Option<String>,
    /// CLIP folder (transformers layout: config.json, model.safetensors) for `clip_iqa`
    /// and, with --caption, `clip_similarity`; without it both are null.
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Caption that `clip_similarity` compares every file with; without it that field is null.
    #[arg(long, value_name = "TEXT", requires = "clip")]
    pub caption: Option<String>,
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn load(path: &PathBuf) -> anyhow::Result<(Vec<u8>, image::DynamicImage)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let decoded = decode::decode(&bytes, &DecodeLimits::default())
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok((bytes, decoded.image))
}

/// Prints `FILE PHASH DHASH` per file, the hashes as `str(imagehash.phash(img))` prints them.
pub fn run_hash(args: &HashArgs) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in &args.files {
        match load(file) {
            Ok((_, img)) => {
                let h = hash::hashes(&img);
                println!(
                    "{} {} {}",
                    file.display(),
                    h.phash.to_hex(),
                    h.dhash.to_hex()
                );
            }
            Err(e) => {
                eprintln!("{:#}", e);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be hashed", args.files.len());
    }
    Ok(())
}

/// Prints one JSON object per file with the NSFW score, the hashes and every quality metric.
pub fn run_measure(args: &MeasureArgs, app: &App) -> anyhow::Result<()> {
    let model_path = args
        .nsfw_model
        .clone()
        .unwrap_or_else(|| app.paths.models.join("open-nsfw.onnx"));
    let mut cfg = super::curate::config(app, None)?;
    if let Some(runtime) = &args.nsfw_runtime {
        cfg.tool.nsfw_runtime.clone_from(runtime);
    }
    let model = NsfwScorer::load(&model_path, &super::curate::nsfw_runtime(app, &cfg)?, true)?;
    let clip = match &args.clip {
        Some(dir) => {
            let weights = ClipWeights::hashed(dir, &super::curate::clip_vocab(app, &cfg))
                .map_err(|e| user_error(format!("--clip: {e}")))?;
            Some(ClipScorer::load(&weights)?)
        }
        None => None,
    };
    let caption = args.caption.as_deref().and_then(similarity_caption);
    let mut failed = 0;
    for file in &args.files {
        let line = load(file).and_then(|(bytes, img)| {
            let h = hash::hashes(&img);
            let m = quality::measure(&img, bytes.len() as u64);
            let (_, nsfw) = model.run(&nsfw::preprocess(&img, true)?)?;
            let scores = match &clip {
                Some(c) => c.score(std::slice::from_ref(&img), &[caption])?.pop(),
                None => None,
            };
            Ok(serde_json::json!({
                "file": file.display().to_string(),
                "nsfw": nsfw,
                "phash": h.phash.to_hex(),
                "dhash": h.dhash.to_hex(),
                "width": m.width,
                "height": m.height,
                "shortest_side": m.shortest_side,
                "area": m.area,
                "aspect_ratio": m.aspect_ratio,
                "blur": m.blur,
                "entropy": m.entropy,
                "dark": m.dark,
                "light": m.light,
                "grayscale": m.grayscale,
                "placeholder": m.placeholder,
                "file_size": m.file_size,
                "clip_similarity": scores.and_then(|s| s.similarity),
                "clip_iqa": scores.map(|s| s.iqa),
            }))
        });
        match line {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("{e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} files could not be measured",
            args.files.len()
        );
    }
    Ok(())
}
