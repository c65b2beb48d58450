//! LoRA adapters on linear layers, with PEFT/diffusers key naming.
//!
//! A [`LoraLinear`] computes `base(x) + B(A(x)) * alpha / rank`, as PEFT's `lora.Linear`
//! does. `A` (`lora_A.weight`, `[rank, in]`) starts Kaiming-uniform and `B`
//! (`lora_B.weight`, `[out, rank]`) starts at zero, so a fresh adapter leaves the model
//! unchanged. [`Weights`] walks the base weights and the adapter weights with the same
//! prefixes, so an adapter VarBuilder rooted at `unet` yields the keys diffusers'
//! `load_lora_weights` accepts, e.g.
//! `unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight`.
//!
//! Freezing the base is a matter of building it from plain tensors (not `Var`s): see
//! [`frozen`]. Then the adapter's `VarMap` holds the only trainable variables.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Module, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};

use crate::linear::Linear;

use crate::error::{Error, Result};

/// Rank and scaling of the LoRA adapters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    /// Rank `r` of the update `B A`.
    pub rank: usize,
    /// `lora_alpha`; the update is scaled by `alpha / rank`.
    pub alpha: f64,
}

impl LoraConfig {
    /// The SAFE research code's setting: rank 4, alpha = rank (scale 1).
    pub fn safe() -> Self {
        Self {
            rank: 4,
            alpha: 4.0,
        }
    }

    /// The factor applied to the low-rank update.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self::safe()
    }
}

/// Base weights plus optional adapter weights, walked with identical prefixes.
#[derive(Clone)]
pub struct Weights<'a> {
    base: VarBuilder<'a>,
    lora: Option<(VarBuilder<'a>, LoraConfig)>,
}

impl<'a> Weights<'a> {
    /// Base weights only (no adapters).
    pub fn new(base: VarBuilder<'a>) -> Self {
        Self { base, lora: None }
    }

    /// Base weights plus LoRA adapters on the attention projections. `lora` should be rooted
    /// at the model prefix diffusers uses in LoRA files (`unet` for the UNet).
    pub fn with_lora(base: VarBuilder<'a>, lora: VarBuilder<'a>, cfg: LoraConfig) -> Self {
        Self {
            base,
            lora: Some((lora, cfg)),
        }
    }

    /// Descends into a sub-module on both the base and the adapter side.
    pub fn pp(&self, name: impl ToString) -> Self {
        let name = name.to_string();
        Self {
            base: self.base.pp(&name),
            lora: self.lora.as_ref().map(|(vb, c)| (vb.pp(&name), *c)),
        }
    }

    /// The base VarBuilder at the current prefix.
    pub fn base(&self) -> &VarBuilder<'a> {
        &self.base
    }

    /// A linear layer that gets an adapter when adapters are enabled.
    pub fn lora_linear(
        &self,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> candle_core::Result<LoraLinear> {
        let base = if bias {
            crate::linear::linear(in_dim, out_dim, self.base.clone())?
        } else {
            crate::linear::linear_no_bias(in_dim, out_dim, self.base.clone())?
        };
        let adapter = match &self.lora {
            None => None,
            Some((vb, cfg)) => {
                if cfg.rank == 0 {
                    return Err(candle_core::Error::Msg("LoRA rank must be positive".into()));
                }
                // PEFT's init: kaiming_uniform_(a = sqrt(5)) on A, zeros on B.
                let bound = 1.0 / (in_dim as f64).sqrt();
                let a = vb.pp("lora_A").get_with_hints(
                    (cfg.rank, in_dim),
                    "weight",
                    Init::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                )?;
                let b = vb.pp("lora_B").get_with_hints(
                    (out_dim, cfg.rank),
                    "weight",
                    Init::Const(0.0),
                )?;
                Some(Adapter {
                    a,
                    b,
                    scale: cfg.scale(),
                })
            }
        };
        Ok(LoraLinear { base, adapter })
    }
}

#[derive(Debug, Clone)]
struct Adapter {
    a: Tensor,
    b: Tensor,
    scale: f64,
}

/// A linear layer with an optional low-rank update.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    base: Linear,
    adapter: Option<Adapter>,
}

impl LoraLinear {
    /// Whether this layer carries an adapter.
    pub fn has_adapter(&self) -> bool {
        self.adapter.is_some()
    }
}

impl Module for LoraLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.base.forward(x)?;
        match &self.adapter {
            None => Ok(y),
            Some(ad) => {
                // Mixed precision: the adapter's master weights stay f32 while the frozen base
                // and the activations run in f16/bf16. The cast is part of the graph, so the
                // gradients arrive at the f32 variables in f32.
                let (a, b) = if ad.a.dtype() == x.dtype() {
                    (ad.a.clone(), ad.b.clone())
                } else {
                    (ad.a.to_dtype(x.dtype())?, ad.b.to_dtype(x.dtype())?)
                };
                let down = x.broadcast_matmul(&a.t()?)?;
                let up = down.broadcast_matmul(&b.t()?)?;
                y + (up * ad.scale)?
            }
        }
    }
}

/// A VarBuilder over detached copies of `varmap`'s variables: the same values, but nothing
/// built from it is trainable or receives gradients.
pub fn frozen<'a>(
    varmap: &VarMap,
    dtype: DType,
    device: &candle_core::Device,
) -> candle_core::Result<VarBuilder<'a>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
    let tensors: HashMap<String, Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_detached_tensor()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}

/// safetensors metadata key under which diffusers (>= 0.34) stores the PEFT `LoraConfig`.
pub const ADAPTER_METADATA_KEY: &str = "lora_adapter_metadata";

/// Saves the adapter variables of `varmap` (keys as built, e.g. `unet.….to_q.lora_A.weight`)
/// with the PEFT `LoraConfig` in the metadata, as diffusers' `save_lora_weights` does: the
/// config's keys carry the model prefix (`unet.r`, `unet.lora_alpha`), because diffusers'
/// `load_lora_adapter` keeps only the metadata keys under the model's prefix.
pub fn save_lora(varmap: &VarMap, cfg: LoraConfig, prefix: &str, path: &Path) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::Input {
        what: "LoRA VarMap",
        reason: "lock poisoned".into(),
    })?;
    let tensors: Vec<(String, Tensor)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let adapter = serde_json::json!({
        format!("{prefix}.r"): cfg.rank,
        format!("{prefix}.lora_alpha"): cfg.alpha,
        format!("{prefix}.target_modules"): ["to_k", "to_out.0", "to_q", "to_v"],
    });
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (ADAPTER_METADATA_KEY.to_string(), adapter.to_string()),
    ]);
    safetensors::serialize_to_file(tensors, Some(meta), path).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        source: candle_core::Error::Msg(e.to_string()),
    })
}

/// Whether a safetensors file holds LoRA adapters (any `lora_A`/`lora_B` tensor) rather than
/// whole weights (a fully fine-tuned UNet). Reads only the file's header.
pub fn is_lora_file(path: &Path) -> Result<bool> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        source: candle_core::Error::Msg(reason),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io)?;
    let len = u64::from_le_bytes(len);
    // safetensors caps its header at 100 MB; a larger length is a corrupt or foreign file.
    if len > 100_000_000 {
        return Err(bad(format!(
            "header length {len} is not a safetensors header"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    Ok(header
        .keys()
        .any(|k| k.contains(".lora_A.") || k.contains(".lora_B.")))
}

/// Reads a LoRA file: its tensors as a VarBuilder rooted at `prefix` (`unet`) and the rank/alpha from its metadata (`{prefix}.lora_alpha`; alpha
/// defaults to the rank found in the `lora_A` shapes when the file has none, as diffusers
/// assumes).
pub fn load_lora(
    prefix: &str,
    path: &Path,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<(VarBuilder<'static>, LoraConfig)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let weights_err = |msg: String| Error::Weights {
        path: path.to_path_buf(),
        source: candle_core::Error::Msg(msg),
    };
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| weights_err(e.to_string()))?;
    let rank = meta
        .tensors()
        .iter()
        .find(|(k, _)| k.starts_with(prefix) && k.ends_with("lora_A.weight"))
        .and_then(|(_, info)| info.shape.first().copied())
        .ok_or_else(|| weights_err("no lora_A.weight tensor".into()))?;
    let alpha = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(ADAPTER_METADATA_KEY))
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| {
            v.get(format!("{prefix}.lora_alpha"))
                .or_else(|| v.get("lora_alpha"))
                .and_then(|a| a.as_f64())
        })
        .unwrap_or(rank as f64);
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|source| Error::Weights {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((
        VarBuilder::from_tensors(tensors, dtype, device).pp(prefix),
        LoraConfig { rank, alpha },
    ))
}
