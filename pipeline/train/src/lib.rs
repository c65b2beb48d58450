//! SAFE training for anchor (ANCHOR, arXiv 2404.10141): LoRA domain fine-tuning of a Stable
//! Diffusion UNet on the `train` split, with plain captions (`lora`) or subject-weighted
//! text embeddings (`safe`), and, when no SD weights are given, an embedded demo base model
//! trained here from scratch (a small VAE, then a small UNet with a frozen random-init CLIP
//! text encoder).
//!
//! Map of the crate:
//! - [`step`]: the `train` step (parts `vae`, `unet`, `lora`, `safe`; table `train_log`);
//! - [`stages`]: what each part trains, the caches of latents and embeddings, the model files
//!   (`<out>/train/models/base/`, `models/lora/<configuration>/pytorch_lora_weights.safetensors`,
//!   `models/manifest.json`);
//! - [`trainer`]: the loop (accumulation, clipping, cosine schedule, checkpoints that make a
//!   resumed run equal an uninterrupted one, data-parallel gradient sharing);
//!   [`parallel`]: the in-process all-reduce of `N` threads; [`optim`]: AdamW and friends; [`rng`]: the
//!   seeded generator whose state checkpoints hold; [`precision`]: f16/bf16 compute with f32
//!   master weights, and f16's loss scaling;
//! - [`data`]: joining `splits`, `pairs_curated`, `pairs` and `subjects`; crop and flip;
//! - [`validation`]: images sampled from fixed prompts while a LoRA trains;
//! - [`folder`]: diffusers folder writing; [`st`]: deterministic safetensors files;
//!   [`plot`]: the loss-curve PNG;
//! - [`parity`]: the networks on a GPU against the CPU, module by module.

#![warn(missing_docs)]

pub mod allocator;
pub mod data;
pub mod demo;
mod error;
pub mod fixture;
pub mod folder;
pub mod layout;
pub mod objective;
pub mod optim;
pub mod parallel;
pub mod parity;
pub mod plot;
pub mod precision;
pub use anchor_core::rng;
pub mod settings;
pub mod st;
pub mod stages;
pub mod step;
pub mod trainer;
pub mod validation;

pub use anchor_sd::{FIXED_SUBJECT_WEIGHT, LoraConfig};
pub use error::{Error, Result};
pub use precision::Precision;
pub use settings::{
    DemoSettings, SubjectWeighting, TrainSettings, TrainedLora, ValidationSettings,
};
pub use step::TrainStep;
