//! A whole Stable Diffusion model loaded from a diffusers folder (`--base PATH`): `unet/`,
//! `vae/`, `text_encoder/`, `tokenizer/` (special tokens only; tokenisation itself is the
//! caller's) and `scheduler/`, plus an optional LoRA file.

use std::path::Path;

use candle_core::{DType, Device};
use serde::Deserialize;

use crate::clip::ClipTextModel;
use crate::conditioning::{SpecialTokens, TextConditioner};
use crate::error::{Error, Result};
use crate::lora::{Weights, load_lora};
use crate::scheduler::{BetaSchedule, NoiseSchedule, Prediction};
use crate::unet::{UNet2DConditionModel, UNetConfig};
use crate::vae::AutoencoderKL;

/// UNet, VAE, frozen text encoder and noise schedule of one base model.
#[derive(Debug, Clone)]
pub struct StableDiffusion {
    /// The denoiser (with the LoRA applied when one was given).
    pub unet: UNet2DConditionModel,
    /// The autoencoder.
    pub vae: AutoencoderKL,
    /// The text encoder with its empty-prompt baseline.
    pub text: TextConditioner,
    /// The training noise schedule (prediction type included).
    pub schedule: NoiseSchedule,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
        path: path.to_path_buf(),
        source,
    })
}

#[derive(Deserialize)]
struct RawScheduler {
    #[serde(default = "thousand")]
    num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    beta_start: f32,
    #[serde(default = "beta_end")]
    beta_end: f32,
    #[serde(default = "scaled_linear")]
    beta_schedule: String,
    #[serde(default)]
    prediction_type: Option<Prediction>,
}

fn thousand() -> usize {
    1000
}
fn beta_start() -> f32 {
    0.00085
}
fn beta_end() -> f32 {
    0.012
}
fn scaled_linear() -> String {
    "scaled_linear".into()
}

impl NoiseSchedule {
    /// Reads a diffusers `scheduler/scheduler_config.json` (any of SD's scheduler classes).
    pub fn from_diffusers_json(path: &Path) -> Result<Self> {
        let raw: RawScheduler = read_json(path)?;
        let kind = match raw.beta_schedule.as_str() {
            "scaled_linear" => BetaSchedule::ScaledLinear,
            "linear" => BetaSchedule::Linear,
            other => {
                return Err(Error::Config {
                    what: "scheduler",
                    reason: format!("{}: unsupported beta_schedule {other}", path.display()),
                });
            }
        };
        Ok(Self::new(
            raw.num_train_timesteps,
            raw.beta_start,
            raw.beta_end,
            kind,
            raw.prediction_type.unwrap_or(Prediction::Epsilon),
        ))
    }
}

impl SpecialTokens {
    /// Reads `special_tokens_map.json` and `vocab.json` of a diffusers `tokenizer/` folder
    /// (SD 1.x pads with `<|endoftext|>`, SD 2.x with `!`).
    pub fn from_tokenizer_dir(dir: &Path) -> Result<Self> {
        let map_path = dir.join("special_tokens_map.json");
        let map: serde_json::Value = read_json(&map_path)?;
        let vocab_path = dir.join("vocab.json");
        let vocab: std::collections::HashMap<String, u32> = read_json(&vocab_path)?;
        let id = |key: &'static str| -> Result<u32> {
            // Either a plain string or `{"content": "..."}`.
            let token = map
                .get(key)
                .and_then(|v| {
                    v.as_str()
                        .or_else(|| v.get("content").and_then(|c| c.as_str()))
                })
                .ok_or_else(|| Error::Config {
                    what: "tokenizer",
                    reason: format!("{} has no {key}", map_path.display()),
                })?;
            vocab.get(token).copied().ok_or_else(|| Error::Config {
                what: "tokenizer",
                reason: format!("{key} {token:?} is not in {}", vocab_path.display()),
            })
        };
        Ok(Self {
            bos: id("bos_token")?,
            eos: id("eos_token")?,
            pad: id("pad_token")?,
        })
    }
}

impl StableDiffusion {
    /// Loads every part from a diffusers folder; with `lora`, a LoRA file in the diffusers
    /// key scheme (`unet.…lora_A.weight`) is applied to the UNet's attention projections.
    pub fn from_diffusers_dir(
        base: &Path,
        lora: Option<&Path>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        tracing::debug!(base = %base.display(), lora = ?lora, "loading Stable Diffusion");
        let unet_dir = base.join("unet");
        let unet = match lora {
            None => UNet2DConditionModel::from_diffusers_dir(&unet_dir, dtype, device)?,
            Some(lora_path) => {
                let cfg = UNetConfig::from_diffusers_json(&unet_dir.join("config.json"))?;
                let weights_path = unet_dir.join("diffusion_pytorch_model.safetensors");
                let base_vb = crate::weights::load_safetensors(&weights_path, dtype, device)?;
                let (lora_vb, lora_cfg) = load_lora("unet", lora_path, dtype, device)?;
                UNet2DConditionModel::new(Weights::with_lora(base_vb, lora_vb, lora_cfg), cfg)
                    .map_err(|e| match e {
                        Error::Candle(source) => Error::Weights {
                            path: lora_path.to_path_buf(),
                            source,
                        },
                        other => other,
                    })?
            }
        };
        let vae = AutoencoderKL::from_diffusers_dir(&base.join("vae"), dtype, device)?;
        let encoder = ClipTextModel::from_dir(&base.join("text_encoder"), dtype, device)?;
        let special = SpecialTokens::from_tokenizer_dir(&base.join("tokenizer"))?;
        let schedule =
            NoiseSchedule::from_diffusers_json(&base.join("scheduler/scheduler_config.json"))?;
        Ok(Self {
            unet,
            vae,
            text: TextConditioner::new(encoder, special)?,
            schedule,
        })
    }
}
