//! The CLIP text encoder of Stable Diffusion, ported from transformers'
//! `models/clip/modeling_clip.py` (`CLIPTextModel`). It is run frozen in SAFE, but is built
//! from the same differentiable ops as the UNet.
//!
//! Keys are transformers' (`text_model.embeddings.token_embedding.weight`,
//! `text_model.encoder.layers.{i}.self_attn.q_proj.weight`, `text_model.final_layer_norm.weight`),
//! so diffusers' `text_encoder/model.safetensors` loads as is.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

use crate::linear::Linear;

use crate::error::{Error, Result};
use crate::norm::LayerNorm;

/// Configuration of a [`ClipTextModel`]: transformers' `CLIPTextConfig`, as every CLIP in
/// the project reads it.
pub use anchor_clip_config::{ClipActivation, TextConfig as ClipTextConfig};

/// Reads a transformers `text_encoder/config.json`.
pub fn read_text_config(path: &Path) -> Result<ClipTextConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg: ClipTextConfig = serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
        path: path.to_path_buf(),
        source,
    })?;
    cfg.check().map_err(|reason| Error::Config {
        what: "CLIP text encoder",
        reason,
    })?;
    Ok(cfg)
}

#[derive(Debug, Clone)]
struct ClipAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    scale: f64,
}

impl ClipAttention {
    fn new(vb: VarBuilder, cfg: &ClipTextConfig) -> candle_core::Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            q_proj: crate::linear::linear(d, d, vb.pp("q_proj"))?,
            k_proj: crate::linear::linear(d, d, vb.pp("k_proj"))?,
            v_proj: crate::linear::linear(d, d, vb.pp("v_proj"))?,
            out_proj: crate::linear::linear(d, d, vb.pp("out_proj"))?,
            heads: cfg.num_attention_heads,
            scale: 1.0 / ((d / cfg.num_attention_heads) as f64).sqrt(),
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let hd = d / self.heads;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, l, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * self.heads, l, hd))
        };
        let q = split((self.q_proj.forward(x)? * self.scale)?)?;
        let k = split(self.k_proj.forward(x)?)?;
        let v = split(self.v_proj.forward(x)?)?;
        let scores = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(mask)?;
        let probs = crate::softmax::scaled_softmax_last_dim(&scores, 1.0)?;
        let out = probs
            .matmul(&v)?
            .reshape((b, self.heads, l, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, l, d))?;
        self.out_proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct ClipLayer {
    layer_norm1: LayerNorm,
    self_attn: ClipAttention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: ClipActivation,
}

impl ClipLayer {
    fn new(vb: VarBuilder, cfg: &ClipTextConfig) -> candle_core::Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            layer_norm1: LayerNorm::new(d, cfg.layer_norm_eps, vb.pp("layer_norm1"))?,
            self_attn: ClipAttention::new(vb.pp("self_attn"), cfg)?,
            layer_norm2: LayerNorm::new(d, cfg.layer_norm_eps, vb.pp("layer_norm2"))?,
            fc1: crate::linear::linear(d, cfg.intermediate_size, vb.pp("mlp.fc1"))?,
            fc2: crate::linear::linear(cfg.intermediate_size, d, vb.pp("mlp.fc2"))?,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let x = (self
            .self_attn
            .forward(&self.layer_norm1.forward(x)?, mask)?
            + x)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        let h = match self.act {
            ClipActivation::QuickGelu => (&h * candle_nn::ops::sigmoid(&(&h * 1.702)?)?)?,
            ClipActivation::Gelu => h.gelu_erf()?,
        };
        self.fc2.forward(&h)? + x
    }
}

/// transformers' `CLIPTextModel` (text tower only): token ids to per-token hidden states.
#[derive(Debug, Clone)]
pub struct ClipTextModel {
    cfg: ClipTextConfig,
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<ClipLayer>,
    final_layer_norm: LayerNorm,
    device: Device,
}

impl ClipTextModel {
    /// Builds the encoder from `vb` rooted at the file's top level (it descends into
    /// `text_model` when the file has that prefix).
    pub fn new(vb: VarBuilder, cfg: ClipTextConfig) -> Result<Self> {
        let device = vb.device().clone();
        // diffusers' hub files keep transformers 4's `text_model.` prefix; files saved by
        // transformers 5 drop it. Both load.
        let vb = if vb.contains_tensor("text_model.embeddings.token_embedding.weight") {
            vb.pp("text_model")
        } else {
            vb
        };
        let d = cfg.hidden_size;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| ClipLayer::new(vb.pp(format!("encoder.layers.{i}")), &cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: candle_nn::embedding(
                cfg.vocab_size,
                d,
                vb.pp("embeddings.token_embedding"),
            )?,
            position_embedding: candle_nn::embedding(
                cfg.max_position_embeddings,
                d,
                vb.pp("embeddings.position_embedding"),
            )?,
            layers,
            final_layer_norm: LayerNorm::new(d, cfg.layer_norm_eps, vb.pp("final_layer_norm"))?,
            cfg,
            device,
        })
    }

    /// Loads `config.json` and `model.safetensors` from a diffusers `text_encoder/` folder.
    pub fn from_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg = read_text_config(&dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        let vb = crate::weights::load_safetensors(&path, dtype, device)?;
        Self::new(vb, cfg).map_err(|e| crate::weights::locate(e, &path))
    }

    /// The configuration.
    pub fn config(&self) -> &ClipTextConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `ids`: `[B, L]` (u32), `L <= max_position_embeddings`. Returns `last_hidden_state`
    /// `[B, L, hidden]` (after the final layer norm), what SD feeds to the UNet.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_b, l) = ids.dims2()?;
        if l > self.cfg.max_position_embeddings {
            return Err(Error::Input {
                what: "token ids",
                reason: format!(
                    "{l} tokens exceed {} positions",
                    self.cfg.max_position_embeddings
                ),
            });
        }
        let dev = ids.device();
        let pos = Tensor::arange(0u32, l as u32, dev)?;
        let x = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.position_embedding.forward(&pos)?)?;
        let mask = causal_mask(l, x.dtype(), dev)?;
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
        }
        Ok(self.final_layer_norm.forward(&x)?)
    }
}

/// `[L, L]` additive mask: 0 on and below the diagonal, the dtype's minimum above, as
/// transformers builds it.
fn causal_mask(l: usize, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = (0..l)
        .flat_map(|i| (0..l).map(move |j| if j > i { f32::MIN } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (l, l), dev)?.to_dtype(dtype)
}
