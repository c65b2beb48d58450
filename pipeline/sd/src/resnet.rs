//! Residual blocks and resamplers, ported from diffusers' `models/resnet.py`
//! (`ResnetBlock2D`) and `models/downsampling.py` / `models/upsampling.py`.
//!
//! Upsampling is nearest-neighbour by an integer factor, whose backward candle implements
//! (bilinear has none in candle 0.11.1).

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use crate::linear::Linear;

use crate::conv::{Conv2d, conv2d};

use crate::norm::{GroupNorm, group_norm};
use crate::silu::silu;

/// Shape of a [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy)]
pub struct ResnetBlock2DConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels; a 1x1 `conv_shortcut` is added when they differ from the input's.
    pub out_channels: usize,
    /// Width of the timestep embedding (`time_emb_proj`); `None` in the VAE.
    pub temb_channels: Option<usize>,
    /// GroupNorm groups.
    pub groups: usize,
    /// GroupNorm epsilon (1e-5 in the UNet, 1e-6 in the VAE).
    pub eps: f64,
}

/// diffusers' `ResnetBlock2D` with the default `time_embedding_norm="default"`.
#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
}

fn conv3x3(i: usize, o: usize, vb: VarBuilder) -> candle_core::Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    conv2d(i, o, 3, cfg, vb)
}

impl ResnetBlock2D {
    /// Builds `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2` and `conv_shortcut`.
    pub fn new(vb: VarBuilder, cfg: ResnetBlock2DConfig) -> candle_core::Result<Self> {
        let (i, o) = (cfg.in_channels, cfg.out_channels);
        let time_emb_proj = match cfg.temb_channels {
            Some(t) => Some(crate::linear::linear(t, o, vb.pp("time_emb_proj"))?),
            None => None,
        };
        let conv_shortcut = if i != o {
            Some(conv2d(
                i,
                o,
                1,
                Conv2dConfig::default(),
                vb.pp("conv_shortcut"),
            )?)
        } else {
            None
        };
        Ok(Self {
            norm1: group_norm(cfg.groups, i, cfg.eps, vb.pp("norm1"))?,
            conv1: conv3x3(i, o, vb.pp("conv1"))?,
            time_emb_proj,
            norm2: group_norm(cfg.groups, o, cfg.eps, vb.pp("norm2"))?,
            conv2: conv3x3(o, o, vb.pp("conv2"))?,
            conv_shortcut,
        })
    }

    /// `x`: `[B, C, H, W]`; `temb`: `[B, T]`, one embedding per sample (required when the
    /// block was built with `temb_channels`).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let h = self.conv1.forward(&silu(&self.norm1.forward(x)?)?)?;
        let h = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(t)) => {
                let t = proj.forward(&silu(t)?)?.unsqueeze(2)?.unsqueeze(3)?;
                h.broadcast_add(&t)?
            }
            (Some(_), None) => {
                return Err(candle_core::Error::Msg(
                    "ResnetBlock2D built with a time embedding needs one".into(),
                ));
            }
            (None, _) => h,
        };
        let h = self.conv2.forward(&silu(&self.norm2.forward(&h)?)?)?;
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        shortcut + h
    }
}

/// diffusers' `Downsample2D` with a convolution (`conv`, 3x3, stride 2).
#[derive(Debug, Clone)]
pub struct Downsample2D {
    conv: Conv2d,
    /// The VAE pads only right/bottom (`padding=0` plus `F.pad(x, (0, 1, 0, 1))`).
    asymmetric: bool,
}

impl Downsample2D {
    /// `padding = 1` for the UNet (`asymmetric = false`), `0` + manual pad for the VAE.
    pub fn new(vb: VarBuilder, channels: usize, asymmetric: bool) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: if asymmetric { 0 } else { 1 },
            stride: 2,
            ..Default::default()
        };
        Ok(Self {
            conv: conv2d(channels, channels, 3, cfg, vb.pp("conv"))?,
            asymmetric,
        })
    }
}

impl Module for Downsample2D {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.asymmetric {
            let x = x.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?;
            self.conv.forward(&x)
        } else {
            self.conv.forward(x)
        }
    }
}

/// diffusers' `Upsample2D`: nearest 2x, then `conv` (3x3).
#[derive(Debug, Clone)]
pub struct Upsample2D {
    conv: Conv2d,
}

impl Upsample2D {
    /// Builds `conv`.
    pub fn new(vb: VarBuilder, channels: usize) -> candle_core::Result<Self> {
        Ok(Self {
            conv: conv3x3(channels, channels, vb.pp("conv"))?,
        })
    }
}

impl Module for Upsample2D {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        self.conv.forward(&x.upsample_nearest2d(h * 2, w * 2)?)
    }
}
