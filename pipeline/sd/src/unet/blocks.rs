//! The UNet's down, mid and up blocks, ported from diffusers' `models/unets/unet_2d_blocks.py`
//! (`CrossAttnDownBlock2D`, `DownBlock2D`, `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D`,
//! `UpBlock2D`). A block with `attentions` is the cross-attention variant.

use candle_core::{Module, Tensor};

use crate::attention::{Transformer2DConfig, Transformer2DModel};
use crate::lora::Weights;
use crate::resnet::{Downsample2D, ResnetBlock2D, ResnetBlock2DConfig, Upsample2D};

/// What the blocks share with the whole UNet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockCommon {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub cross_attention_dim: usize,
    pub use_linear_projection: bool,
    pub transformer_layers: usize,
}

impl BlockCommon {
    fn resnet(&self, w: &Weights, i: usize, o: usize) -> candle_core::Result<ResnetBlock2D> {
        ResnetBlock2D::new(
            w.base().clone(),
            ResnetBlock2DConfig {
                in_channels: i,
                out_channels: o,
                temb_channels: Some(self.temb_channels),
                groups: self.groups,
                eps: self.eps,
            },
        )
    }

    fn transformer(
        &self,
        w: Weights,
        channels: usize,
        heads: usize,
    ) -> candle_core::Result<Transformer2DModel> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            return Err(candle_core::Error::Msg(format!(
                "{channels} channels cannot be split into {heads} attention heads"
            )));
        }
        Transformer2DModel::new(
            w,
            Transformer2DConfig {
                in_channels: channels,
                heads,
                head_dim: channels / heads,
                layers: self.transformer_layers,
                cross_attention_dim: self.cross_attention_dim,
                norm_num_groups: self.groups,
                use_linear_projection: self.use_linear_projection,
            },
        )
    }
}

/// A down block; `attentions` is empty for a plain `DownBlock2D`.
#[derive(Debug, Clone)]
pub(crate) struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w: Weights,
        common: &BlockCommon,
        in_channels: usize,
        out_channels: usize,
        layers: usize,
        heads: Option<usize>,
        add_downsample: bool,
    ) -> candle_core::Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for j in 0..layers {
            let i = if j == 0 { in_channels } else { out_channels };
            resnets.push(common.resnet(&w.pp(format!("resnets.{j}")), i, out_channels)?);
            if let Some(h) = heads {
                attentions.push(common.transformer(
                    w.pp(format!("attentions.{j}")),
                    out_channels,
                    h,
                )?);
            }
        }
        let downsampler = if add_downsample {
            Some(Downsample2D::new(
                w.base().pp("downsamplers.0"),
                out_channels,
                false,
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            downsampler,
        })
    }

    /// Returns the output and the skip states (one per resnet, plus the downsampled one).
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
        let mut x = x.clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (j, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(&x, Some(temb))?;
            if let Some(attn) = self.attentions.get(j) {
                x = attn.forward(&x, context)?;
            }
            states.push(x.clone());
        }
        if let Some(down) = &self.downsampler {
            x = down.forward(&x)?;
            states.push(x.clone());
        }
        Ok((x, states))
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, (transformer, resnet) x layers.
#[derive(Debug, Clone)]
pub(crate) struct MidBlock {
    first: ResnetBlock2D,
    rest: Vec<(Transformer2DModel, ResnetBlock2D)>,
}

impl MidBlock {
    pub fn new(
        w: Weights,
        common: &BlockCommon,
        channels: usize,
        heads: usize,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            first: common.resnet(&w.pp("resnets.0"), channels, channels)?,
            rest: vec![(
                common.transformer(w.pp("attentions.0"), channels, heads)?,
                common.resnet(&w.pp("resnets.1"), channels, channels)?,
            )],
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let mut x = self.first.forward(x, Some(temb))?;
        for (attn, resnet) in &self.rest {
            x = attn.forward(&x, context)?;
            x = resnet.forward(&x, Some(temb))?;
        }
        Ok(x)
    }
}

/// An up block; `attentions` is empty for a plain `UpBlock2D`.
#[derive(Debug, Clone)]
pub(crate) struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock {
    /// Channel bookkeeping as diffusers': resnet `j` sees the previous block's output (or
    /// its own) concatenated with a skip of `out_channels`, except the last, whose skip
    /// comes from the level below and has `in_channels`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w: Weights,
        common: &BlockCommon,
        in_channels: usize,
        prev_output_channels: usize,
        out_channels: usize,
        layers: usize,
        heads: Option<usize>,
        add_upsample: bool,
    ) -> candle_core::Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for j in 0..layers {
            let skip = if j == layers - 1 {
                in_channels
            } else {
                out_channels
            };
            let input = if j == 0 {
                prev_output_channels
            } else {
                out_channels
            };
            resnets.push(common.resnet(
                &w.pp(format!("resnets.{j}")),
                input + skip,
                out_channels,
            )?);
            if let Some(h) = heads {
                attentions.push(common.transformer(
                    w.pp(format!("attentions.{j}")),
                    out_channels,
                    h,
                )?);
            }
        }
        let upsampler = if add_upsample {
            Some(Upsample2D::new(w.base().pp("upsamplers.0"), out_channels)?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            upsampler,
        })
    }

    /// Number of skip states this block consumes.
    pub fn skips(&self) -> usize {
        self.resnets.len()
    }

    /// `skips` are consumed from the back, as diffusers pops `res_hidden_states_tuple[-1]`.
    pub fn forward(
        &self,
        x: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for (j, resnet) in self.resnets.iter().enumerate() {
            let skip = skips
                .get(skips.len().wrapping_sub(1 + j))
                .ok_or_else(|| candle_core::Error::Msg("UNet skip stack underflow".into()))?;
            x = Tensor::cat(&[&x, skip], 1)?;
            x = resnet.forward(&x, Some(temb))?;
            if let Some(attn) = self.attentions.get(j) {
                x = attn.forward(&x, context)?;
            }
        }
        if let Some(up) = &self.upsampler {
            x = up.forward(&x)?;
        }
        Ok(x)
    }
}
