//! Stable Diffusion 1.x/2.x in candle for SAFE (Subject-Aware Finetuning, ANCHOR,
//! arXiv 2404.10141): a differentiable UNet and VAE, the CLIP text encoder, LoRA adapters,
//! noise schedules and samplers, and subject-weighted text conditioning.
//!
//! Every module is written from candle ops whose backward exists in candle 0.11.1
//! (`candle_nn::ops::softmax`, a spelled-out layer norm, nearest upsampling) or from custom
//! ops with their own analytic backward (the CPU convolution in [`conv`] and group norm in
//! [`norm`], which candle's generic backward made the slowest part of a training step, the
//! attention softmax in [`softmax`] and the feed-forward's GEGLU in [`geglu`]),
//! because candle-transformers' stable_diffusion modules silently stop
//! gradients (`softmax_last_dim`, the fused LayerNorm). The gradient tests check that every
//! trainable `Var` receives one.
//!
//! Weights load from a diffusers folder (`unet/`, `vae/`, `text_encoder/`) under the exact
//! diffusers/transformers tensor names, or build from a config with random init
//! (`UNetConfig::sd15()`, `::sd21()`, `::tiny()`). LoRA adapters use the PEFT/diffusers key
//! scheme (`unet.<module path>.to_q.lora_A.weight`).
//!
//! Map of the crate:
//! - networks: [`unet`] (`UNet2DConditionModel`, per-sample timesteps), [`vae`]
//!   (`AutoencoderKL`), [`clip`] (`ClipTextModel`), built from [`attention`], [`resnet`],
//!   [`norm`]; [`StableDiffusion`] loads them all from a diffusers folder (plus a LoRA file);
//! - [`lora`]: adapters on `to_q`/`to_k`/`to_v`/`to_out.0`, [`lora::frozen`] for a frozen
//!   base, [`lora::save_lora`]/[`lora::load_lora`] in the file format diffusers loads;
//! - [`scheduler`]: the DDPM schedule (epsilon and v targets, Min-SNR weights), DDIM and
//!   Euler samplers, classifier-free guidance; [`loss`]: the training objective;
//! - [`conditioning`]: subject spans to per-token weights, 77-token fitting with truncation
//!   flagged, and compel's `empty + (full - empty) * w` rule. Token ids and spans come from any
//!   CLIP BPE tokenizer, e.g. `anchor-clip-tokenizer`:
//!   `FittedPrompt::from_encoding(enc.ids, &enc.spans, enc.truncated, &subjects, Weighting::default())`;
//! - [`sampling`]: seeded noise, the guided denoising loop, latents to RGB bytes.
//!
//! Parity with diffusers/transformers/compel (max abs diff below 1e-4 on tiny random
//! models) is checked by `tests/parity.rs` when `ANCHOR_PYTHON` is set.
//!
//! This crate reads and writes no tables itself (sampling, which writes `generations`, and
//! training build on it) and never imports another step crate.
//!
//! ```no_run
//! use anchor_sd::{UNet2DConditionModel, UNetConfig, Weights};
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//!
//! # fn main() -> anchor_sd::Result<()> {
//! let dev = Device::Cpu;
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
//! let unet = UNet2DConditionModel::new(Weights::new(vb), UNetConfig::tiny())?;
//! let latents = Tensor::randn(0f32, 1., (2, 4, 16, 16), &dev)?;
//! let t = Tensor::new(&[10f32, 500.], &dev)?;
//! let text = Tensor::randn(0f32, 1., (2, 77, 32), &dev)?;
//! let eps = unet.forward(&latents, &t, &text)?;
//! assert_eq!(eps.dims(), &[2, 4, 16, 16]);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod affine;
pub mod attention;
pub mod clip;
pub mod conditioning;
pub mod conv;
mod cpu_op;
mod error;
pub mod geglu;
pub mod linear;
pub mod lora;
pub mod loss;
mod model;
pub mod norm;
pub mod resnet;
pub mod sampling;
pub mod scheduler;
pub mod silu;
pub mod softmax;
pub mod unet;
pub mod vae;
pub mod weights;

/// Sets up the CPU threads candle computes with, for the life of the process: fixes
/// candle's thread count and makes the calling thread a member of rayon's global pool.
///
/// candle asks for its thread count before every matrix product and, while
/// `RAYON_NUM_THREADS` is unset, counts physical cores by parsing `/proc/cpuinfo` each
/// time: about a tenth of a small training step. Setting the variable once, to the count
/// candle would have found, turns that lookup into an environment read. A value the user
/// set is kept.
///
/// candle's kernels, gemm and this crate's custom ops split their work with rayon. Called
/// from a thread outside rayon's pool, every such op hands its work to the pool and sleeps
/// until a worker has done it: a futex wake and wait per op, which on the small tensors of
/// a training step cost about a quarter of the step. With the calling thread in the pool, an
/// op runs on the caller and only the pieces other workers steal change threads. The pool
/// keeps its thread count, the caller included, and at least one background worker, so
/// work that other threads (readers, writers) hand to the pool still runs while the caller
/// waits outside rayon.
///
/// # Safety
/// Writes the process environment: call it first in `main`, before any thread starts.
pub unsafe fn setup_cpu_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        // SAFETY: the caller guarantees no other thread reads or writes the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    let threads = candle_core::utils::get_num_threads().max(2);
    let joined = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
        .build_global();
    if let Err(err) = joined {
        // The pool already exists (a second call): ops still run, through the handoff.
        tracing::debug!("rayon's global pool was set up before: {err}");
    }
}

pub use clip::{ClipActivation, ClipTextConfig, ClipTextModel};
pub use conditioning::{
    FIXED_SUBJECT_WEIGHT, FittedPrompt, SpecialTokens, SubjectSpan, TextConditioner, Weighting,
    fit_to_context, token_weights, weighted_embeddings,
};
pub use error::{Error, Result};
pub use lora::{LoraConfig, LoraLinear, Weights};
pub use loss::diffusion_loss;
pub use model::StableDiffusion;
pub use scheduler::{
    BetaSchedule, DdimScheduler, EulerDiscreteScheduler, NoiseSchedule, Prediction, Sampler,
    classifier_free_guidance,
};
pub use unet::{BlockKind, UNet2DConditionModel, UNetConfig};
pub use vae::{AutoencoderKL, DiagonalGaussian, VaeConfig};
