//! What shapes a training run: the configurations trained, the base, the LoRA and
//! optimiser settings, and the demo base's own settings.

use std::path::PathBuf;

use anchor_sd::LoraConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::trainer::Schedule;

/// The LoRA a configuration of the paper trains (the others reuse these at sampling time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainedLora {
    /// Domain fine-tuning on plain captions.
    Lora,
    /// The LoRA trained with subject-weighted embeddings (SAFE).
    Safe,
}

impl TrainedLora {
    /// Its name in tables and paths.
    pub fn name(self) -> &'static str {
        match self {
            TrainedLora::Lora => "lora",
            TrainedLora::Safe => "safe",
        }
    }

    /// Parses `lora` or `safe`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "lora" => Ok(TrainedLora::Lora),
            "safe" => Ok(TrainedLora::Safe),
            other => Err(Error::Config {
                what: "configurations",
                reason: format!(
                    "{other:?} does not train (lora and safe do; weighting, lora+weighting and prefix reuse them at sampling time)"
                ),
            }),
        }
    }
}

/// How `safe` weights subject tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectWeighting {
    /// Every subject gets the same weight (compel `++` = 1.21).
    Fixed(f32),
    /// The weights of the `subjects` table.
    Llm,
}

/// Settings of the demo base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSettings {
    /// VAE optimiser steps.
    pub vae_steps: u64,
    /// VAE learning rate.
    pub vae_lr: f64,
    /// Weight of the VAE's KL term.
    pub vae_kl_weight: f64,
    /// UNet optimiser steps.
    pub unet_steps: u64,
    /// UNet learning rate.
    pub unet_lr: f64,
    /// Samples per micro-batch of both.
    pub batch_size: usize,
}

/// Images sampled from fixed prompts while a LoRA trains, to watch it learn (diffusers'
/// `--validation_prompt`): see [`crate::validation`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationSettings {
    /// The prompts, one image each; empty: no validation images.
    pub prompts: Vec<String>,
    /// Steps between validation images (0: after the last step only).
    pub every: u64,
}

impl ValidationSettings {
    /// Whether no images are asked for (settings keys then omit the field).
    pub fn is_off(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// Everything that shapes the training outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// LoRA configurations to train.
    pub configurations: Vec<TrainedLora>,
    /// A diffusers folder; `None` trains the demo base.
    pub base: Option<PathBuf>,
    /// Image side in pixels.
    pub resolution: usize,
    /// LoRA rank and alpha.
    pub lora: LoraConfig,
    /// Optimiser steps per LoRA, samples per micro-batch, micro-batches per step, the LoRAs'
    /// peak learning rate, warm-up steps and grad-norm clip. Flattened: a stage key lists
    /// these keys in this place, as before they were grouped.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Min-SNR-gamma (none = plain MSE).
    pub min_snr_gamma: Option<f32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Subject weighting of `safe`.
    pub weighting: SubjectWeighting,
    /// The demo base's settings (ignored with `base`).
    pub demo: DemoSettings,
    /// open_clip's `bpe_simple_vocab_16e6.txt.gz`.
    pub vocab: PathBuf,
    /// Compute dtype of the frozen UNet while training the LoRAs (the demo base's VAE and
    /// UNet always train in f32). Omitted from keys when f32, so older runs keep theirs.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Train every UNet weight instead of LoRA adapters (f32 only); the configuration's
    /// output is then a whole diffusers UNet. Omitted from keys when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_finetune: bool,
    /// Validation images while the LoRAs train. They do not shape the weights, so no stage
    /// key holds them; omitted when off.
    #[serde(default, skip_serializing_if = "ValidationSettings::is_off")]
    pub validation: ValidationSettings,
}
