//! Normalisation layers built from primitive, differentiable candle ops.
//!
//! candle-nn 0.11.1's `LayerNorm` takes a fused kernel with no backward whenever the input is
//! contiguous and has a bias: its output silently becomes a fresh leaf and every parameter
//! before it loses its gradient. This layer norm is spelled out with `mean`/`sqr`/`sqrt` so
//! autograd sees every step. (candle-nn's `GroupNorm` is already built from primitive ops
//! and is reused; the gradient tests cover it.)

use candle_core::{D, DType, Module, Tensor};
use candle_nn::VarBuilder;

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
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// `torch.nn.GroupNorm` (candle-nn's, which is made of primitive ops and has a backward).
pub fn group_norm(
    groups: usize,
    channels: usize,
    eps: f64,
    vb: VarBuilder,
) -> candle_core::Result<candle_nn::GroupNorm> {
    candle_nn::group_norm(groups, channels, eps, vb)
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
}
