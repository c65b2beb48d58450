//! Attention and the transformer blocks of the SD UNet, ported from diffusers'
//! `models/attention_processor.py` (`Attention`), `models/attention.py`
//! (`BasicTransformerBlock`, `FeedForward`, `GEGLU`) and
//! `models/transformers/transformer_2d.py` (`Transformer2DModel`).
//!
//! Softmax is [`crate::softmax::scaled_softmax_last_dim`] (fused on the CPU, with its
//! backward); layer norms come from [`crate::norm::LayerNorm`].

use candle_core::{DType, Module, Tensor};
use candle_nn::Conv2dConfig;

use crate::lora::{LoraLinear, Weights};
use crate::norm::{GroupNorm, LayerNorm, group_norm};

/// Shape of one multi-head attention layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionConfig {
    /// Width of the queries (and of the output).
    pub query_dim: usize,
    /// Width of the keys/values source; `None` for self-attention.
    pub cross_attention_dim: Option<usize>,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Whether `to_q`/`to_k`/`to_v` have biases (the UNet's do not, the VAE's do).
    pub qkv_bias: bool,
}

/// diffusers' `Attention` with keys `to_q`, `to_k`, `to_v`, `to_out.0`.
#[derive(Debug, Clone)]
pub struct Attention {
    to_q: LoraLinear,
    to_k: LoraLinear,
    to_v: LoraLinear,
    to_out: LoraLinear,
    heads: usize,
    scale: f64,
}

impl Attention {
    /// Builds the four projections; each gets a LoRA adapter when `w` carries adapters.
    pub fn new(w: Weights, cfg: AttentionConfig) -> candle_core::Result<Self> {
        let inner = cfg.heads * cfg.head_dim;
        let kv_dim = cfg.cross_attention_dim.unwrap_or(cfg.query_dim);
        Ok(Self {
            to_q: w
                .pp("to_q")
                .lora_linear(cfg.query_dim, inner, cfg.qkv_bias)?,
            to_k: w.pp("to_k").lora_linear(kv_dim, inner, cfg.qkv_bias)?,
            to_v: w.pp("to_v").lora_linear(kv_dim, inner, cfg.qkv_bias)?,
            // diffusers keeps the output projection in a ModuleList next to a Dropout, hence `.0`.
            to_out: w.pp("to_out.0").lora_linear(inner, cfg.query_dim, true)?,
            heads: cfg.heads,
            scale: 1.0 / (cfg.head_dim as f64).sqrt(),
        })
    }

    /// `[B, L, C] -> [B * heads, L, C / heads]`.
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l, c) = x.dims3()?;
        let d = c / self.heads;
        x.reshape((b, l, self.heads, d))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * self.heads, l, d))
    }

    /// Attends from `x` (`[B, L, C]`) to `context` (`[B, S, C']`, or `x` itself when `None`).
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let ctx = context.unwrap_or(x);
        let q = self.split_heads(&self.to_q.forward(x)?)?;
        let k = self.split_heads(&self.to_k.forward(ctx)?)?;
        let v = self.split_heads(&self.to_v.forward(ctx)?)?;
        let probs = attention_probs(&q, &k, self.scale)?;
        let out = probs.matmul(&v)?;
        let d = out.dim(2)?;
        let out = out
            .reshape((b, self.heads, l, d))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, l, self.heads * d))?;
        self.to_out.forward(&out)
    }
}

/// `softmax(q k^T * scale)` over the last dim. Half-precision scores are computed in f32
/// (diffusers' `upcast_attention`, which SD 2.1 enables): f16 logits overflow at SD sizes.
pub(crate) fn attention_probs(q: &Tensor, k: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    let dtype = q.dtype();
    let (q, k) = match dtype {
        DType::F16 | DType::BF16 => (q.to_dtype(DType::F32)?, k.to_dtype(DType::F32)?),
        _ => (q.clone(), k.clone()),
    };
    let scores = q.matmul(&k.t()?.contiguous()?)?;
    crate::softmax::scaled_softmax_last_dim(&scores, scale)?.to_dtype(dtype)
}

/// diffusers' `FeedForward` with the GEGLU activation: `ff.net.0.proj` then `ff.net.2`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    proj: crate::linear::Linear,
    out: crate::linear::Linear,
}

impl FeedForward {
    /// `dim -> 2 * 4 dim` (value and gate), `4 dim -> dim`.
    pub fn new(w: Weights, dim: usize) -> candle_core::Result<Self> {
        let inner = dim * 4;
        let vb = w.base();
        Ok(Self {
            proj: crate::linear::linear(dim, inner * 2, vb.pp("net.0.proj"))?,
            out: crate::linear::linear(inner, dim, vb.pp("net.2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // torch's F.gelu default is the exact (erf) form, which `geglu` computes.
        self.out
            .forward(&crate::geglu::geglu(&self.proj.forward(x)?)?)
    }
}

/// diffusers' `BasicTransformerBlock`: self-attention, cross-attention, GEGLU feed-forward,
/// each pre-normed and residual.
#[derive(Debug, Clone)]
pub struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    /// `dim = heads * head_dim`; `cross_attention_dim` is the text encoder's width.
    pub fn new(
        w: Weights,
        dim: usize,
        heads: usize,
        head_dim: usize,
        cross_attention_dim: usize,
    ) -> candle_core::Result<Self> {
        let attn = |name: &str, cross: Option<usize>| {
            Attention::new(
                w.pp(name),
                AttentionConfig {
                    query_dim: dim,
                    cross_attention_dim: cross,
                    heads,
                    head_dim,
                    qkv_bias: false,
                },
            )
        };
        Ok(Self {
            norm1: LayerNorm::new(dim, 1e-5, w.base().pp("norm1"))?,
            attn1: attn("attn1", None)?,
            norm2: LayerNorm::new(dim, 1e-5, w.base().pp("norm2"))?,
            attn2: attn("attn2", Some(cross_attention_dim))?,
            norm3: LayerNorm::new(dim, 1e-5, w.base().pp("norm3"))?,
            ff: FeedForward::new(w.pp("ff"), dim)?,
        })
    }

    /// `x`: `[B, L, dim]`, `context`: `[B, S, cross_attention_dim]`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> candle_core::Result<Tensor> {
        let x = (self.attn1.forward(&self.norm1.forward(x)?, None)? + x)?;
        let x = (self
            .attn2
            .forward(&self.norm2.forward(&x)?, Some(context))?
            + &x)?;
        self.ff.forward(&self.norm3.forward(&x)?)? + x
    }
}

/// Shape of a [`Transformer2DModel`].
#[derive(Debug, Clone, Copy)]
pub struct Transformer2DConfig {
    /// Channels of the feature map (= heads * head_dim in SD).
    pub in_channels: usize,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Number of stacked `transformer_blocks`.
    pub layers: usize,
    /// Text encoder width.
    pub cross_attention_dim: usize,
    /// GroupNorm groups of the input norm.
    pub norm_num_groups: usize,
    /// SD 2.x projects in/out with linear layers, SD 1.x with 1x1 convolutions.
    pub use_linear_projection: bool,
}

#[derive(Debug, Clone)]
enum Projection {
    Conv(crate::conv::Conv2d),
    Linear(crate::linear::Linear),
}

/// diffusers' `Transformer2DModel` (continuous input): norm, proj_in, blocks, proj_out, residual.
#[derive(Debug, Clone)]
pub struct Transformer2DModel {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    /// Builds `norm`, `proj_in`, `transformer_blocks.{i}`, `proj_out`.
    pub fn new(w: Weights, cfg: Transformer2DConfig) -> candle_core::Result<Self> {
        let inner = cfg.heads * cfg.head_dim;
        let vb = w.base();
        let proj = |name: &str, i: usize, o: usize| -> candle_core::Result<Projection> {
            if cfg.use_linear_projection {
                Ok(Projection::Linear(crate::linear::linear(
                    i,
                    o,
                    vb.pp(name),
                )?))
            } else {
                Ok(Projection::Conv(crate::conv::conv2d(
                    i,
                    o,
                    1,
                    Conv2dConfig::default(),
                    vb.pp(name),
                )?))
            }
        };
        let blocks = (0..cfg.layers)
            .map(|i| {
                BasicTransformerBlock::new(
                    w.pp(format!("transformer_blocks.{i}")),
                    inner,
                    cfg.heads,
                    cfg.head_dim,
                    cfg.cross_attention_dim,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            norm: group_norm(cfg.norm_num_groups, cfg.in_channels, 1e-6, vb.pp("norm"))?,
            proj_in: proj("proj_in", cfg.in_channels, inner)?,
            blocks,
            proj_out: proj("proj_out", inner, cfg.in_channels)?,
        })
    }

    /// `x`: `[B, C, H, W]`, `context`: `[B, S, cross_attention_dim]`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _c, h, wd) = x.dims4()?;
        let residual = x;
        let x = self.norm.forward(x)?;
        let to_tokens = |t: Tensor| -> candle_core::Result<Tensor> {
            let c = t.dim(1)?;
            t.permute((0, 2, 3, 1))?.reshape((b, h * wd, c))
        };
        let mut x = match &self.proj_in {
            Projection::Conv(conv) => to_tokens(conv.forward(&x)?)?,
            Projection::Linear(lin) => lin.forward(&to_tokens(x)?)?,
        };
        for block in &self.blocks {
            x = block.forward(&x, context)?;
        }
        let to_map = |t: Tensor| -> candle_core::Result<Tensor> {
            let c = t.dim(2)?;
            t.reshape((b, h, wd, c))?
                .permute((0, 3, 1, 2))?
                .contiguous()
        };
        let x = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(&to_map(x)?)?,
            Projection::Linear(lin) => to_map(lin.forward(&x)?)?,
        };
        x + residual
    }
}
