//! Where a training run keeps its files under `<out>/train`, and the `done.json` record
//! that marks a finished stage (keyed by a digest of its settings and inputs).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::settings::TrainedLora;
use crate::trainer::LogRow;

/// A finished stage: its key and log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    /// Digest of the stage's settings and inputs.
    pub key: String,
    /// The training curve.
    pub log: Vec<LogRow>,
    /// Stage-specific facts (reconstruction losses, file hashes, ...).
    pub facts: serde_json::Value,
    /// Wall-clock seconds spent training in the call that finished it (0 when resumed
    /// from a finished record); never part of a table.
    #[serde(default)]
    pub seconds: f64,
    /// Steps computed in that call.
    #[serde(default)]
    pub steps_run: u64,
}

/// Paths under `<out>/train`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<out>/train`.
    pub root: PathBuf,
}

impl Layout {
    /// The demo base (or nothing, with `--base`).
    pub fn base_dir(&self) -> PathBuf {
        self.root.join("models").join("base")
    }
    /// The LoRA file of `c`.
    pub fn lora_file(&self, c: TrainedLora) -> PathBuf {
        self.root
            .join("models")
            .join("lora")
            .join(c.name())
            .join("pytorch_lora_weights.safetensors")
    }
    /// The fully fine-tuned UNet of `c`, a diffusers `unet` folder's weights file.
    pub fn full_unet_file(&self, c: TrainedLora) -> PathBuf {
        self.root
            .join("models")
            .join("full")
            .join(c.name())
            .join("unet")
            .join("diffusion_pytorch_model.safetensors")
    }
    /// Configuration `c`'s validation images, beside its weights (the LoRA file, or the
    /// fully fine-tuned `unet` folder).
    pub fn validation_dir(&self, c: TrainedLora, full_finetune: bool) -> PathBuf {
        let kind = if full_finetune { "full" } else { "lora" };
        self.root
            .join("models")
            .join(kind)
            .join(c.name())
            .join("validation")
    }
    /// Where configuration `c`'s trained weights go.
    pub fn weights_file(&self, c: TrainedLora, full_finetune: bool) -> PathBuf {
        if full_finetune {
            self.full_unet_file(c)
        } else {
            self.lora_file(c)
        }
    }
    /// `models/manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("models").join("manifest.json")
    }
    /// Work folder of a stage.
    pub fn work(&self, stage: &str) -> PathBuf {
        self.root.join("work").join(stage)
    }
    /// Cached latents and embeddings.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
}

pub(crate) fn digest(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `v` as compact JSON, for a stage key: a value that does not serialise is an error,
/// never an empty string that every run would share.
pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Config {
        what: "settings",
        reason: format!("not serialisable for the stage key: {e}"),
    })
}

pub(crate) fn read_record(dir: &Path, key: &str) -> Option<StageRecord> {
    let bytes = std::fs::read(dir.join("done.json")).ok()?;
    let mut r: StageRecord = serde_json::from_slice(&bytes).ok()?;
    // Nothing was trained by this call.
    r.seconds = 0.0;
    r.steps_run = 0;
    (r.key == key).then_some(r)
}

pub(crate) fn write_record(dir: &Path, r: &StageRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Checkpoint {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    crate::st::write_bytes(&dir.join("done.json"), &json)
}
