//! `torch.nn.Linear` whose bias gradient comes from the fused per-channel op.
//!
//! The product is candle-nn's (one matrix product over the flattened leading axes when the
//! input is contiguous); the bias goes through [`crate::affine::add_bias`], whose backward
//! sums the output gradient in one pass instead of candle's generic strided reduction.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

/// A linear layer: weight `[out, in]` and an optional bias `[out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer from existing tensors.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The weight, `[out, in]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// Loads `weight` and `bias` under `vb` with candle-nn's shapes and initialisation.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let layer = candle_nn::linear(in_dim, out_dim, vb)?;
    Ok(Linear::new(layer.weight().clone(), layer.bias().cloned()))
}

/// Loads `weight` alone.
pub fn linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
) -> candle_core::Result<Linear> {
    let layer = candle_nn::linear_no_bias(in_dim, out_dim, vb)?;
    Ok(Linear::new(layer.weight().clone(), None))
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self.weight.t()?;
        let dims = x.dims();
        let y = match dims {
            [.., k] if dims.len() > 2 && x.is_contiguous() => {
                let mut out = dims.to_vec();
                if let Some(last) = out.last_mut() {
                    *last = self.weight.dim(0)?;
                }
                x.reshape(((), *k))?.matmul(&w)?.reshape(out)?
            }
            _ if dims.len() > 2 => x.broadcast_matmul(&w)?,
            _ => x.matmul(&w)?,
        };
        match &self.bias {
            None => Ok(y),
            Some(bias) => crate::affine::add_bias(&y, bias, y.rank() - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn matches_candle_nn_linear_forward_and_backward() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let ours = linear(5, 3, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let theirs = candle_nn::Linear::new(ours.weight.clone(), ours.bias.clone());
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 4, 5), &dev)?)?;
        let (a, b) = (ours.forward(x.as_tensor())?, theirs.forward(x.as_tensor())?);
        let diff = |a: &Tensor, b: &Tensor| -> candle_core::Result<f32> {
            (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
        };
        assert!(diff(&a, &b)? < 1e-6);
        let probe = Tensor::randn(0f32, 1., a.shape(), &dev)?;
        let ga = (&a * &probe)?.sum_all()?.backward()?;
        let gb = (&b * &probe)?.sum_all()?.backward()?;
        let bias = ours.bias.clone().expect("bias");
        for t in [x.as_tensor(), &ours.weight, &bias] {
            assert!(diff(ga.get(t).expect("ours"), gb.get(t).expect("candle's"))? < 1e-5);
        }
        // A 2-D input takes the plain product.
        let flat = Tensor::randn(0f32, 1., (3, 5), &dev)?;
        assert!(diff(&ours.forward(&flat)?, &theirs.forward(&flat)?)? < 1e-6);
        Ok(())
    }
}
