//! The Stable Diffusion 1.x/2.x `UNet2DConditionModel`, ported from diffusers'
//! `models/unets/unet_2d_condition.py`, with one timestep per sample.
//!
//! Tensor names are diffusers' (`conv_in`, `time_embedding.linear_1`,
//! `down_blocks.{i}.resnets.{j}`, `down_blocks.{i}.attentions.{j}.transformer_blocks.{k}.attn1.to_q`,
//! `mid_block`, `up_blocks`, `conv_norm_out`, `conv_out`), so `unet/diffusion_pytorch_model.safetensors`
//! loads as is.

mod blocks;

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Conv2dConfig;

use crate::linear::Linear;

use crate::conv::{Conv2d, conv2d};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lora::Weights;
use crate::norm::{GroupNorm, group_norm};
use crate::silu::silu;
use blocks::{BlockCommon, DownBlock, MidBlock, UpBlock};

/// Whether a down/up block has cross-attention transformers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `CrossAttnDownBlock2D` / `CrossAttnUpBlock2D`.
    CrossAttn,
    /// `DownBlock2D` / `UpBlock2D`.
    Plain,
}

/// Configuration of a [`UNet2DConditionModel`].
#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    /// Latent channels in.
    pub in_channels: usize,
    /// Channels out (noise or v prediction).
    pub out_channels: usize,
    /// Channels per resolution level.
    pub block_out_channels: Vec<usize>,
    /// Kind of each down block (same length as `block_out_channels`).
    pub down_blocks: Vec<BlockKind>,
    /// Kind of each up block (from the lowest resolution up).
    pub up_blocks: Vec<BlockKind>,
    /// Resnets per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Transformer blocks per `Transformer2DModel`.
    pub transformer_layers_per_block: usize,
    /// Width of the text encoder's hidden states.
    pub cross_attention_dim: usize,
    /// Attention heads per level. diffusers' configs call this `attention_head_dim`
    /// for SD 1.x/2.x, but its value is used as the number of heads.
    pub attention_heads: Vec<usize>,
    /// SD 2.x: linear `proj_in`/`proj_out` in the transformers.
    pub use_linear_projection: bool,
    /// GroupNorm groups.
    pub norm_num_groups: usize,
    /// GroupNorm epsilon of the resnets and `conv_norm_out`.
    pub norm_eps: f64,
    /// Sinusoidal timestep embedding: `[cos, sin]` order when true (SD).
    pub flip_sin_to_cos: bool,
    /// Sinusoidal timestep embedding frequency shift (0 for SD).
    pub freq_shift: f64,
}

impl UNetConfig {
    /// Stable Diffusion 1.5.
    pub fn sd15() -> Self {
        use BlockKind::*;
        Self {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            down_blocks: vec![CrossAttn, CrossAttn, CrossAttn, Plain],
            up_blocks: vec![Plain, CrossAttn, CrossAttn, CrossAttn],
            layers_per_block: 2,
            transformer_layers_per_block: 1,
            cross_attention_dim: 768,
            attention_heads: vec![8; 4],
            use_linear_projection: false,
            norm_num_groups: 32,
            norm_eps: 1e-5,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
        }
    }

    /// Stable Diffusion 2.1 (768 v-prediction and 512 base share the UNet shape).
    pub fn sd21() -> Self {
        Self {
            cross_attention_dim: 1024,
            attention_heads: vec![5, 10, 20, 20],
            use_linear_projection: true,
            ..Self::sd15()
        }
    }

    /// A tiny SD-shaped UNet for tests: levels 32/64, cross-attention width 32, one resnet per
    /// down block, 8 GroupNorm groups, heads of width 16.
    pub fn tiny() -> Self {
        use BlockKind::*;
        Self {
            block_out_channels: vec![32, 64],
            down_blocks: vec![CrossAttn, Plain],
            up_blocks: vec![Plain, CrossAttn],
            layers_per_block: 1,
            cross_attention_dim: 32,
            attention_heads: vec![2, 4],
            norm_num_groups: 8,
            ..Self::sd15()
        }
    }

    /// Reads a diffusers `unet/config.json`.
    pub fn from_diffusers_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: RawUNetConfig =
            serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
                path: path.to_path_buf(),
                source,
            })?;
        raw.into_config()
    }

    fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        let bad = |reason: String| Error::Config {
            what: "UNet",
            reason,
        };
        if n == 0 {
            return Err(bad("no blocks".into()));
        }
        if self.down_blocks.len() != n
            || self.up_blocks.len() != n
            || self.attention_heads.len() != n
        {
            return Err(bad(format!(
                "{n} levels but {} down blocks, {} up blocks, {} head counts",
                self.down_blocks.len(),
                self.up_blocks.len(),
                self.attention_heads.len()
            )));
        }
        for &c in &self.block_out_channels {
            if !c.is_multiple_of(self.norm_num_groups) {
                return Err(bad(format!(
                    "{c} channels not divisible into {} groups",
                    self.norm_num_groups
                )));
            }
        }
        if self.layers_per_block == 0 {
            return Err(bad("layers_per_block must be positive".into()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(usize),
    Many(Vec<usize>),
}

impl OneOrMany {
    fn expand(&self, n: usize) -> Vec<usize> {
        match self {
            Self::One(v) => vec![*v; n],
            Self::Many(v) => v.clone(),
        }
    }
}

/// The subset of diffusers' UNet `config.json` that SD 1.x/2.x use.
#[derive(Deserialize)]
struct RawUNetConfig {
    #[serde(default = "four")]
    in_channels: usize,
    #[serde(default = "four")]
    out_channels: usize,
    block_out_channels: Vec<usize>,
    down_block_types: Vec<String>,
    up_block_types: Vec<String>,
    #[serde(default = "two")]
    layers_per_block: usize,
    #[serde(default)]
    transformer_layers_per_block: Option<OneOrMany>,
    cross_attention_dim: usize,
    #[serde(default)]
    attention_head_dim: Option<OneOrMany>,
    #[serde(default)]
    num_attention_heads: Option<OneOrMany>,
    #[serde(default)]
    use_linear_projection: Option<bool>,
    #[serde(default = "thirty_two")]
    norm_num_groups: usize,
    #[serde(default = "norm_eps")]
    norm_eps: f64,
    #[serde(default = "yes")]
    flip_sin_to_cos: bool,
    #[serde(default)]
    freq_shift: f64,
}

fn two() -> usize {
    2
}
fn four() -> usize {
    4
}
fn thirty_two() -> usize {
    32
}
fn norm_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

impl RawUNetConfig {
    fn into_config(self) -> Result<UNetConfig> {
        let n = self.block_out_channels.len();
        let kind = |t: &str| -> Result<BlockKind> {
            match t {
                "CrossAttnDownBlock2D" | "CrossAttnUpBlock2D" => Ok(BlockKind::CrossAttn),
                "DownBlock2D" | "UpBlock2D" => Ok(BlockKind::Plain),
                other => Err(Error::Config {
                    what: "UNet",
                    reason: format!("unsupported block type {other}"),
                }),
            }
        };
        // diffusers' own compatibility rule: `num_attention_heads or attention_head_dim`.
        let heads = self
            .num_attention_heads
            .or(self.attention_head_dim)
            .map(|h| h.expand(n))
            .unwrap_or_else(|| vec![8; n]);
        let transformer_layers = match self.transformer_layers_per_block {
            None => 1,
            Some(t) => {
                let v = t.expand(n);
                let first = v.first().copied().unwrap_or(1);
                if v.iter().any(|&x| x != first) {
                    return Err(Error::Config {
                        what: "UNet",
                        reason: "per-level transformer_layers_per_block is not supported".into(),
                    });
                }
                first
            }
        };
        let cfg = UNetConfig {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            down_blocks: self
                .down_block_types
                .iter()
                .map(|t| kind(t))
                .collect::<Result<_>>()?,
            up_blocks: self
                .up_block_types
                .iter()
                .map(|t| kind(t))
                .collect::<Result<_>>()?,
            block_out_channels: self.block_out_channels,
            layers_per_block: self.layers_per_block,
            transformer_layers_per_block: transformer_layers,
            cross_attention_dim: self.cross_attention_dim,
            attention_heads: heads,
            use_linear_projection: self.use_linear_projection.unwrap_or(false),
            norm_num_groups: self.norm_num_groups,
            norm_eps: self.norm_eps,
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// diffusers' `get_timestep_embedding`: sinusoidal features of one timestep per sample.
pub fn timestep_embedding(
    timesteps: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    shift: f64,
) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let dev = timesteps.device();
    // Host-side f32 arithmetic in torch's order (multiply by -ln(max_period), then divide),
    // so the frequencies match diffusers' bit for bit up to `exp` rounding.
    let neg_log = -(10000f64.ln()) as f32;
    let denom = half as f32 - shift as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (i as f32 * neg_log / denom).exp())
        .collect();
    let freqs = Tensor::from_vec(freqs, half, dev)?;
    let args = timesteps
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs.unsqueeze(0)?)?;
    let (sin, cos) = (args.sin()?, args.cos()?);
    let emb = if flip_sin_to_cos {
        Tensor::cat(&[cos, sin], 1)?
    } else {
        Tensor::cat(&[sin, cos], 1)?
    };
    if dim % 2 == 1 {
        emb.pad_with_zeros(1, 0, 1)
    } else {
        Ok(emb)
    }
}

/// The conditional UNet of Stable Diffusion 1.x/2.x.
#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    cfg: UNetConfig,
    conv_in: Conv2d,
    time_linear_1: Linear,
    time_linear_2: Linear,
    down: Vec<DownBlock>,
    mid: MidBlock,
    up: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet2DConditionModel {
    /// Builds the UNet from `w` (rooted at the UNet's own keys, e.g. `conv_in.weight`).
    pub fn new(w: Weights, cfg: UNetConfig) -> Result<Self> {
        cfg.validate()?;
        let n = cfg.block_out_channels.len();
        let ch0 = cfg.block_out_channels[0];
        let temb = ch0 * 4;
        let vb = w.base();
        let conv3 = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let common = BlockCommon {
            temb_channels: temb,
            groups: cfg.norm_num_groups,
            eps: cfg.norm_eps,
            cross_attention_dim: cfg.cross_attention_dim,
            use_linear_projection: cfg.use_linear_projection,
            transformer_layers: cfg.transformer_layers_per_block,
        };
        let heads_of = |kind: BlockKind, h: usize| match kind {
            BlockKind::CrossAttn => Some(h),
            BlockKind::Plain => None,
        };
        let mut down = Vec::with_capacity(n);
        let mut out_ch = ch0;
        for i in 0..n {
            let in_ch = out_ch;
            out_ch = cfg.block_out_channels[i];
            down.push(DownBlock::new(
                w.pp(format!("down_blocks.{i}")),
                &common,
                in_ch,
                out_ch,
                cfg.layers_per_block,
                heads_of(cfg.down_blocks[i], cfg.attention_heads[i]),
                i + 1 < n,
            )?);
        }
        let last = cfg.block_out_channels[n - 1];
        let mid = MidBlock::new(w.pp("mid_block"), &common, last, cfg.attention_heads[n - 1])?;
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let rev_heads: Vec<usize> = cfg.attention_heads.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        let mut out_ch = rev[0];
        for i in 0..n {
            let prev = out_ch;
            out_ch = rev[i];
            let in_ch = rev[(i + 1).min(n - 1)];
            up.push(UpBlock::new(
                w.pp(format!("up_blocks.{i}")),
                &common,
                in_ch,
                prev,
                out_ch,
                cfg.layers_per_block + 1,
                heads_of(cfg.up_blocks[i], rev_heads[i]),
                i + 1 < n,
            )?);
        }
        Ok(Self {
            conv_in: conv2d(cfg.in_channels, ch0, 3, conv3, vb.pp("conv_in"))?,
            time_linear_1: crate::linear::linear(ch0, temb, vb.pp("time_embedding.linear_1"))?,
            time_linear_2: crate::linear::linear(temb, temb, vb.pp("time_embedding.linear_2"))?,
            down,
            mid,
            up,
            conv_norm_out: group_norm(
                cfg.norm_num_groups,
                ch0,
                cfg.norm_eps,
                vb.pp("conv_norm_out"),
            )?,
            conv_out: conv2d(ch0, cfg.out_channels, 3, conv3, vb.pp("conv_out"))?,
            cfg,
        })
    }

    /// Loads `unet/config.json` and `unet/diffusion_pytorch_model.safetensors` from a
    /// diffusers folder (the base is plain tensors: frozen).
    pub fn from_diffusers_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg = UNetConfig::from_diffusers_json(&dir.join("config.json"))?;
        let path = dir.join("diffusion_pytorch_model.safetensors");
        let vb = crate::weights::load_safetensors(&path, dtype, device)?;
        Self::new(Weights::new(vb), cfg).map_err(|e| crate::weights::locate(e, &path))
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// The dtype the UNet computes in: its (frozen or trainable) weights' dtype.
    pub fn dtype(&self) -> DType {
        self.conv_in.weight().dtype()
    }

    /// Predicts noise (or v) for `sample` (`[B, C, H, W]`, H and W divisible by
    /// 2^(levels-1)), one timestep per sample (`timesteps`: `[B]`, any float or int dtype)
    /// and text states `context` (`[B, 77, cross_attention_dim]`).
    pub fn forward(&self, sample: &Tensor, timesteps: &Tensor, context: &Tensor) -> Result<Tensor> {
        let b = sample.dim(0)?;
        let timesteps = match timesteps.rank() {
            0 => timesteps.broadcast_as(b)?.contiguous()?,
            _ => timesteps.clone(),
        };
        if timesteps.dims() != [b] {
            return Err(Error::Input {
                what: "timesteps",
                reason: format!(
                    "expected [{b}] (one per sample), got {:?}",
                    timesteps.dims()
                ),
            });
        }
        let t = timestep_embedding(
            &timesteps,
            self.cfg.block_out_channels[0],
            self.cfg.flip_sin_to_cos,
            self.cfg.freq_shift,
        )?
        .to_dtype(sample.dtype())?;
        let temb = self
            .time_linear_2
            .forward(&silu(&self.time_linear_1.forward(&t)?)?)?;

        let mut x = self.conv_in.forward(sample)?;
        let mut skips = vec![x.clone()];
        for block in &self.down {
            let (y, states) = block.forward(&x, &temb, context)?;
            x = y;
            skips.extend(states);
        }
        x = self.mid.forward(&x, &temb, context)?;
        for block in &self.up {
            let k = block.skips();
            let at = skips.len().checked_sub(k).ok_or_else(|| Error::Config {
                what: "UNet",
                reason: "skip stack underflow".into(),
            })?;
            let mine = skips.split_off(at);
            x = block.forward(&x, &mine, &temb, context)?;
        }
        let x = silu(&self.conv_norm_out.forward(&x)?)?;
        Ok(self.conv_out.forward(&x)?)
    }
}
