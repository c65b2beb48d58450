//! The Stable Diffusion `AutoencoderKL`, ported from diffusers'
//! `models/autoencoders/autoencoder_kl.py` and `models/autoencoders/vae.py`
//! (`Encoder`, `Decoder`, `DiagonalGaussianDistribution`).
//!
//! Keys are diffusers' (`encoder.down_blocks.{i}.resnets.{j}`, `encoder.mid_block.attentions.0.to_q`,
//! `quant_conv`, `post_quant_conv`, `decoder.up_blocks.{i}.upsamplers.0.conv`). Older VAE files
//! name the mid-block attention `query`/`key`/`value`/`proj_attn`; both spellings load.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use crate::linear::Linear;

use crate::conv::{Conv2d, conv2d};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::norm::{GroupNorm, group_norm};
use crate::resnet::{Downsample2D, ResnetBlock2D, ResnetBlock2DConfig, Upsample2D};
use crate::silu::silu;

/// Configuration of an [`AutoencoderKL`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VaeConfig {
    /// Image channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Decoded image channels.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Latent channels.
    #[serde(default = "four")]
    pub latent_channels: usize,
    /// Channels per resolution level.
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder block (decoder blocks have one more).
    #[serde(default = "one")]
    pub layers_per_block: usize,
    /// GroupNorm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: usize,
    /// Latents are multiplied by this before the UNet sees them.
    #[serde(default = "sd_scale")]
    pub scaling_factor: f64,
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn thirty_two() -> usize {
    32
}
fn sd_scale() -> f64 {
    0.18215
}

impl VaeConfig {
    /// The SD 1.x/2.x VAE.
    pub fn sd() -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
        }
    }

    /// A tiny VAE for tests: levels 32/64 (one 2x downsampling), one resnet per block.
    pub fn tiny() -> Self {
        Self {
            block_out_channels: vec![32, 64],
            layers_per_block: 1,
            norm_num_groups: 8,
            ..Self::sd()
        }
    }

    /// Reads a diffusers `vae/config.json`.
    pub fn from_diffusers_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.block_out_channels.is_empty()
            || self
                .block_out_channels
                .iter()
                .any(|c| !c.is_multiple_of(self.norm_num_groups))
        {
            return Err(Error::Config {
                what: "VAE",
                reason: format!(
                    "block_out_channels {:?} must be non-empty and divisible into {} groups",
                    self.block_out_channels, self.norm_num_groups
                ),
            });
        }
        Ok(())
    }

    /// Spatial downsampling factor between image and latents.
    pub fn downsample_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}

/// The VAE's single-head spatial self-attention (`mid_block.attentions.0`).
#[derive(Debug, Clone)]
struct SpatialAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    scale: f64,
}

impl SpatialAttention {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> candle_core::Result<Self> {
        // Files written before diffusers 0.14 use the old attention-block names.
        let legacy = !vb.contains_tensor("to_q.weight") && vb.contains_tensor("query.weight");
        let name = |new: &'static str, old: &'static str| if legacy { old } else { new };
        let lin = |n: &str| crate::linear::linear(channels, channels, vb.pp(n));
        Ok(Self {
            group_norm: group_norm(groups, channels, 1e-6, vb.pp("group_norm"))?,
            to_q: lin(name("to_q", "query"))?,
            to_k: lin(name("to_k", "key"))?,
            to_v: lin(name("to_v", "value"))?,
            to_out: lin(name("to_out.0", "proj_attn"))?,
            scale: 1.0 / (channels as f64).sqrt(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let tokens = self
            .group_norm
            .forward(x)?
            .reshape((b, c, h * w))?
            .transpose(1, 2)?
            .contiguous()?;
        let q = self.to_q.forward(&tokens)?;
        let k = self.to_k.forward(&tokens)?;
        let v = self.to_v.forward(&tokens)?;
        // diffusers runs this block with `upcast_softmax=True`.
        let probs = crate::attention::attention_probs(&q, &k, self.scale)?;
        let out = self.to_out.forward(&probs.matmul(&v)?)?;
        let out = out.transpose(1, 2)?.reshape((b, c, h, w))?;
        out + x
    }
}

/// `UNetMidBlock2D` without time embedding: resnet, attention, resnet.
#[derive(Debug, Clone)]
struct VaeMidBlock {
    resnet0: ResnetBlock2D,
    attn: SpatialAttention,
    resnet1: ResnetBlock2D,
}

fn vae_resnet(
    vb: VarBuilder,
    i: usize,
    o: usize,
    groups: usize,
) -> candle_core::Result<ResnetBlock2D> {
    ResnetBlock2D::new(
        vb,
        ResnetBlock2DConfig {
            in_channels: i,
            out_channels: o,
            temb_channels: None,
            groups,
            eps: 1e-6,
        },
    )
}

impl VaeMidBlock {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> candle_core::Result<Self> {
        Ok(Self {
            resnet0: vae_resnet(vb.pp("resnets.0"), channels, channels, groups)?,
            attn: SpatialAttention::new(vb.pp("attentions.0"), channels, groups)?,
            resnet1: vae_resnet(vb.pp("resnets.1"), channels, channels, groups)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.resnet0.forward(x, None)?;
        let x = self.attn.forward(&x)?;
        self.resnet1.forward(&x, None)
    }
}

/// A stack of resnets followed by an optional resampler.
#[derive(Debug, Clone)]
struct VaeBlock {
    resnets: Vec<ResnetBlock2D>,
    down: Option<Downsample2D>,
    up: Option<Upsample2D>,
}

impl VaeBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for r in &self.resnets {
            x = r.forward(&x, None)?;
        }
        if let Some(d) = &self.down {
            x = d.forward(&x)?;
        }
        if let Some(u) = &self.up {
            x = u.forward(&x)?;
        }
        Ok(x)
    }
}

fn conv3(i: usize, o: usize, vb: VarBuilder) -> candle_core::Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    conv2d(i, o, 3, cfg, vb)
}

fn conv1(i: usize, o: usize, vb: VarBuilder) -> candle_core::Result<Conv2d> {
    conv2d(i, o, 1, Conv2dConfig::default(), vb)
}

/// The VAE encoder: image to the moments (mean, log-variance) of the latent distribution.
#[derive(Debug, Clone)]
struct Encoder {
    conv_in: Conv2d,
    blocks: Vec<VaeBlock>,
    mid: VaeMidBlock,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> candle_core::Result<Self> {
        let ch = &cfg.block_out_channels;
        let g = cfg.norm_num_groups;
        let n = ch.len();
        let mut blocks = Vec::with_capacity(n);
        let mut out = ch[0];
        for (i, &level) in ch.iter().enumerate() {
            let input = out;
            out = level;
            let bvb = vb.pp(format!("down_blocks.{i}"));
            let resnets = (0..cfg.layers_per_block)
                .map(|j| {
                    let ic = if j == 0 { input } else { out };
                    vae_resnet(bvb.pp(format!("resnets.{j}")), ic, out, g)
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let down = if i + 1 < n {
                Some(Downsample2D::new(bvb.pp("downsamplers.0"), out, true)?)
            } else {
                None
            };
            blocks.push(VaeBlock {
                resnets,
                down,
                up: None,
            });
        }
        let last = ch[n - 1];
        Ok(Self {
            conv_in: conv3(cfg.in_channels, ch[0], vb.pp("conv_in"))?,
            blocks,
            mid: VaeMidBlock::new(vb.pp("mid_block"), last, g)?,
            norm_out: group_norm(g, last, 1e-6, vb.pp("conv_norm_out"))?,
            conv_out: conv3(last, 2 * cfg.latent_channels, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.conv_in.forward(x)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let x = self.mid.forward(&x)?;
        self.conv_out.forward(&silu(&self.norm_out.forward(&x)?)?)
    }
}

/// The VAE decoder: latents to image.
#[derive(Debug, Clone)]
struct Decoder {
    conv_in: Conv2d,
    mid: VaeMidBlock,
    blocks: Vec<VaeBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> candle_core::Result<Self> {
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let g = cfg.norm_num_groups;
        let n = rev.len();
        let mut blocks = Vec::with_capacity(n);
        let mut out = rev[0];
        for (i, &level) in rev.iter().enumerate() {
            let prev = out;
            out = level;
            let bvb = vb.pp(format!("up_blocks.{i}"));
            let resnets = (0..cfg.layers_per_block + 1)
                .map(|j| {
                    let ic = if j == 0 { prev } else { out };
                    vae_resnet(bvb.pp(format!("resnets.{j}")), ic, out, g)
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let up = if i + 1 < n {
                Some(Upsample2D::new(bvb.pp("upsamplers.0"), out)?)
            } else {
                None
            };
            blocks.push(VaeBlock {
                resnets,
                down: None,
                up,
            });
        }
        let first = cfg.block_out_channels[0];
        Ok(Self {
            conv_in: conv3(cfg.latent_channels, rev[0], vb.pp("conv_in"))?,
            mid: VaeMidBlock::new(vb.pp("mid_block"), rev[0], g)?,
            blocks,
            norm_out: group_norm(g, first, 1e-6, vb.pp("conv_norm_out"))?,
            conv_out: conv3(first, cfg.out_channels, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.mid.forward(&self.conv_in.forward(z)?)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        self.conv_out.forward(&silu(&self.norm_out.forward(&x)?)?)
    }
}

/// The latent distribution produced by [`AutoencoderKL::encode`].
#[derive(Debug, Clone)]
pub struct DiagonalGaussian {
    /// Mean, `[B, latent, h, w]`.
    pub mean: Tensor,
    /// Log-variance, clamped to [-30, 20] as diffusers does.
    pub logvar: Tensor,
}

impl DiagonalGaussian {
    /// `mean + exp(logvar / 2) * noise`, with caller-supplied standard normal `noise`
    /// (so sampling is reproducible from the caller's seed).
    pub fn sample_with(&self, noise: &Tensor) -> Result<Tensor> {
        let std = (&self.logvar * 0.5)?.exp()?;
        Ok((&self.mean + std.mul(noise)?)?)
    }

    /// The mode (= the mean).
    pub fn mode(&self) -> &Tensor {
        &self.mean
    }
}

/// diffusers' `AutoencoderKL`.
#[derive(Debug, Clone)]
pub struct AutoencoderKL {
    cfg: VaeConfig,
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
}

impl AutoencoderKL {
    /// Builds the VAE from `vb` rooted at the VAE's own keys (`encoder.conv_in.weight`, ...).
    pub fn new(vb: VarBuilder, cfg: VaeConfig) -> Result<Self> {
        cfg.validate()?;
        let l2 = 2 * cfg.latent_channels;
        Ok(Self {
            encoder: Encoder::new(vb.pp("encoder"), &cfg)?,
            decoder: Decoder::new(vb.pp("decoder"), &cfg)?,
            quant_conv: conv1(l2, l2, vb.pp("quant_conv"))?,
            post_quant_conv: conv1(
                cfg.latent_channels,
                cfg.latent_channels,
                vb.pp("post_quant_conv"),
            )?,
            cfg,
        })
    }

    /// Loads `vae/config.json` and `vae/diffusion_pytorch_model.safetensors` from a diffusers folder.
    pub fn from_diffusers_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg = VaeConfig::from_diffusers_json(&dir.join("config.json"))?;
        let path = dir.join("diffusion_pytorch_model.safetensors");
        let vb = crate::weights::load_safetensors(&path, dtype, device)?;
        Self::new(vb, cfg).map_err(|e| crate::weights::locate(e, &path))
    }

    /// The configuration.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// Images in [-1, 1], `[B, 3, H, W]`, to the latent distribution (unscaled).
    pub fn encode(&self, images: &Tensor) -> Result<DiagonalGaussian> {
        let moments = self.quant_conv.forward(&self.encoder.forward(images)?)?;
        let l = self.cfg.latent_channels;
        let mean = moments.narrow(1, 0, l)?;
        let logvar = moments.narrow(1, l, l)?.clamp(-30f32, 20f32)?;
        Ok(DiagonalGaussian { mean, logvar })
    }

    /// Unscaled latents to images in about [-1, 1].
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        Ok(self
            .decoder
            .forward(&self.post_quant_conv.forward(latents)?)?)
    }

    /// Multiplies latents by the scaling factor (what the UNet is trained on).
    pub fn scale_latents(&self, latents: &Tensor) -> Result<Tensor> {
        Ok((latents * self.cfg.scaling_factor)?)
    }

    /// Undoes [`Self::scale_latents`] before decoding.
    pub fn unscale_latents(&self, latents: &Tensor) -> Result<Tensor> {
        Ok((latents / self.cfg.scaling_factor)?)
    }
}
