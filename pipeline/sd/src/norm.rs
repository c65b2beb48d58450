//! Normalisation layers with a backward pass autograd can follow.
//!
//! candle-nn 0.11.1's `LayerNorm` takes a fused kernel with no backward whenever the input is
//! contiguous and has a bias: its output silently becomes a fresh leaf and every parameter
//! before it loses its gradient. This layer norm is spelled out with `mean`/`sqr`/`sqrt` so
//! autograd sees every step. (candle-nn's `GroupNorm` is already built from primitive ops
//! and stays the fallback of the fused CPU group norm below; the gradient tests cover both.)

use candle_core::{CpuStorage, CustomOp3, D, DType, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::cpu_op::{f32_operands, push_channel_sums, unpack_grads};

/// `torch.nn.LayerNorm` over the last dimension, with affine weight and bias.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of shape `[dim]` (initialised to ones and zeros).
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // Half-precision inputs are normalised in f32, as torch's kernels accumulate.
        let dtype = x.dtype();
        let x = match dtype {
            DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
            _ => x.clone(),
        };
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        // Biased variance, as torch's layer norm uses.
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .to_dtype(dtype)?;
        let last = normed.rank() - 1;
        crate::affine::scale_shift(&normed, &self.weight, &self.bias, last)
    }
}

/// `torch.nn.GroupNorm` over `[batch, channels, ...]` with affine weight and bias.
///
/// On the CPU in f32 it is one fused op with an analytic backward. candle-nn's layer,
/// kept for other devices and dtypes, is built from primitive ops: its backward reduces
/// the weight and bias gradients over the batch and spatial axes with candle's generic
/// strided sum, which cost more than the UNet's convolutions.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    inner: candle_nn::GroupNorm,
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

/// Loads a group norm's `weight` and `bias` (ones and zeros) of shape `[channels]`.
pub fn group_norm(
    groups: usize,
    channels: usize,
    eps: f64,
    vb: VarBuilder,
) -> candle_core::Result<GroupNorm> {
    if groups == 0 || !channels.is_multiple_of(groups) {
        candle_core::bail!("group norm: {channels} channels do not split into {groups} groups");
    }
    let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?;
    let inner = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), channels, groups, eps)?;
    Ok(GroupNorm {
        inner,
        weight,
        bias,
        groups,
        eps,
    })
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let fused = x.device().is_cpu()
            && [x, &self.weight, &self.bias]
                .iter()
                .all(|t| t.dtype() == DType::F32);
        if !fused || x.rank() < 3 {
            return self.inner.forward(x);
        }
        let dims = x.dims();
        let shape = GroupShape {
            batch: dims[0],
            channels: dims[1],
            spatial: dims[2..].iter().product(),
            groups: self.groups,
            eps: self.eps,
        };
        if shape.channels != self.weight.elem_count() {
            candle_core::bail!(
                "group norm: input has {} channels, the layer {}",
                shape.channels,
                self.weight.elem_count()
            );
        }
        x.contiguous()?
            .apply_op3(&self.weight, &self.bias, FusedGroupNorm(shape))
    }
}

/// Sizes of one group norm call.
#[derive(Debug, Clone, Copy)]
struct GroupShape {
    batch: usize,
    channels: usize,
    spatial: usize,
    groups: usize,
    eps: f64,
}

impl GroupShape {
    fn per_group(&self) -> usize {
        self.channels / self.groups
    }

    /// Elements of one (image, group) block.
    fn block(&self) -> usize {
        self.per_group() * self.spatial
    }

    fn len(&self) -> usize {
        self.batch * self.channels * self.spatial
    }

    /// Mean and reciprocal standard deviation of one block (biased variance, as torch).
    fn stats(&self, block: &[f32]) -> (f64, f64) {
        let n = block.len() as f64;
        let mean = block.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = block
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

/// The forward pass: `(x - mean) * rstd * weight + bias` per (image, group) block.
struct FusedGroupNorm(GroupShape);

impl CustomOp3 for FusedGroupNorm {
    fn name(&self) -> &'static str {
        "fused-group-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        w_layout: &Layout,
        bias: &CpuStorage,
        b_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let [x, weight, bias] = f32_operands(
            self.name(),
            [(x, x_layout), (weight, w_layout), (bias, b_layout)],
        )?;
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(g.block())
            .zip(x.par_chunks(g.block()))
            .enumerate()
            .for_each(|(block, (out, input))| {
                let (mean, rstd) = g.stats(input);
                let first = (block % g.groups) * g.per_group();
                for (c, (out, input)) in out
                    .chunks_mut(g.spatial)
                    .zip(input.chunks(g.spatial))
                    .enumerate()
                {
                    let scale = f64::from(weight[first + c]) * rstd;
                    let shift = f64::from(bias[first + c]) - mean * scale;
                    for (o, &v) in out.iter_mut().zip(input) {
                        *o = (f64::from(v) * scale + shift) as f32;
                    }
                }
            });
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.0;
        let packed = x.apply_op3_no_bwd(weight, &grad_y.contiguous()?, &GroupNormGrad(g))?;
        unpack_grads(&packed, x, weight, bias)
    }
}

/// The backward pass, packed as `[grad_x | grad_weight | grad_bias]` so one op makes all
/// three: `dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂))` with `dx̂ = dy · weight`.
struct GroupNormGrad(GroupShape);

impl CustomOp3 for GroupNormGrad {
    fn name(&self) -> &'static str {
        "fused-group-norm-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        w_layout: &Layout,
        grad_y: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let [x, weight, grad_y] = f32_operands(
            self.name(),
            [(x, x_layout), (weight, w_layout), (grad_y, g_layout)],
        )?;
        let mut grad_x = vec![0f32; g.len()];
        // Per (image, channel) partial sums, added over the batch afterwards.
        let mut partial_weight = vec![0f64; g.batch * g.channels];
        let mut partial_bias = vec![0f64; g.batch * g.channels];
        grad_x
            .par_chunks_mut(g.block())
            .zip(partial_weight.par_chunks_mut(g.per_group()))
            .zip(partial_bias.par_chunks_mut(g.per_group()))
            .enumerate()
            .for_each(|(block, ((dx, dw), db))| {
                let input = &x[block * g.block()..(block + 1) * g.block()];
                let dy = &grad_y[block * g.block()..(block + 1) * g.block()];
                let (mean, rstd) = g.stats(input);
                let first = (block % g.groups) * g.per_group();
                let (mut sum_dxhat, mut sum_dxhat_xhat) = (0f64, 0f64);
                for c in 0..g.per_group() {
                    let gamma = f64::from(weight[first + c]);
                    let span = c * g.spatial..(c + 1) * g.spatial;
                    for (&v, &d) in input[span.clone()].iter().zip(&dy[span]) {
                        let (xhat, d) = ((f64::from(v) - mean) * rstd, f64::from(d));
                        dw[c] += d * xhat;
                        db[c] += d;
                        sum_dxhat += d * gamma;
                        sum_dxhat_xhat += d * gamma * xhat;
                    }
                }
                let n = g.block() as f64;
                let (mean_dxhat, mean_dxhat_xhat) = (sum_dxhat / n, sum_dxhat_xhat / n);
                for c in 0..g.per_group() {
                    let gamma = f64::from(weight[first + c]);
                    let span = c * g.spatial..(c + 1) * g.spatial;
                    for ((out, &v), &d) in dx[span.clone()]
                        .iter_mut()
                        .zip(&input[span.clone()])
                        .zip(&dy[span])
                    {
                        let xhat = (f64::from(v) - mean) * rstd;
                        let dxhat = f64::from(d) * gamma;
                        *out = (rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)) as f32;
                    }
                }
            });
        let mut packed = grad_x;
        push_channel_sums(&mut packed, &partial_weight, g.channels);
        push_channel_sums(&mut packed, &partial_bias, g.channels);
        Ok((
            CpuStorage::F32(packed),
            Shape::from(g.len() + 2 * g.channels),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn layer_norm_normalises_and_backpropagates_to_its_parameters() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let ln = LayerNorm::new(4, 1e-5, vb)?;
        let x = Var::from_vec(vec![1f32, 2., 3., 4., -1., 0., 1., 6.], (2, 4), &dev)?;
        let y = ln.forward(x.as_tensor())?;
        let rows = y.to_vec2::<f32>()?;
        for row in &rows {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-5, "mean {mean}");
            assert!((var - 1.0).abs() < 1e-3, "var {var}");
        }
        // Weighted so the gradient with respect to x is not identically zero.
        let w = Tensor::new(&[[1f32, 2., 3., 4.], [4., 3., 2., 1.]], &dev)?;
        let loss = (y * w)?.sum_all()?;
        let grads = loss.backward()?;
        for var in varmap.all_vars() {
            let g = grads
                .get(&var)
                .expect("layer norm parameter has a gradient");
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        let gx = grads.get(x.as_tensor()).expect("input has a gradient");
        assert!(gx.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        Ok(())
    }

    /// Forward and all three gradients against candle-nn's group norm built from
    /// primitive ops (itself held against PyTorch by the UNet gradient tests).
    #[test]
    fn fused_group_norm_matches_the_primitive_one() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let gn = group_norm(3, 6, 1e-5, vb)?;
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(1f32, 0.5, var.shape(), &dev)?)?;
        }
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2., (2, 6, 5, 4), &dev)? + 0.7)?)?;
        let probe = Tensor::randn(0f32, 1., (2, 6, 5, 4), &dev)?;
        let fused = gn.forward(x.as_tensor())?;
        let primitive = gn.inner.forward(x.as_tensor())?;
        let max_diff = |a: &Tensor, b: &Tensor| -> candle_core::Result<f32> {
            (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
        };
        assert!(max_diff(&fused, &primitive)? < 1e-5);
        let g_fused = (&fused * &probe)?.sum_all()?.backward()?;
        let g_primitive = (&primitive * &probe)?.sum_all()?.backward()?;
        let mut checked = 0;
        for t in [x.as_tensor(), &gn.weight, &gn.bias] {
            let a = g_fused.get(t).expect("fused gradient");
            let b = g_primitive.get(t).expect("primitive gradient");
            assert_eq!(a.dims(), b.dims());
            let d = max_diff(a, b)?;
            assert!(d < 1e-4, "gradient differs by {d}");
            checked += 1;
        }
        assert_eq!(checked, 3);
        Ok(())
    }

    #[test]
    fn group_norm_refuses_channels_that_do_not_split() {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        assert!(group_norm(4, 6, 1e-5, vb).is_err());
    }
}
