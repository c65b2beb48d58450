//! `softmax(scale · x)` over the last axis, with a fused CPU forward and backward.
//!
//! `candle_nn::ops::softmax` is five ops (max, subtract, exp, sum, divide), and with the
//! scale six, each with its own backward, two of them broadcast reductions; candle's
//! `softmax_last_dim` has no backward in 0.11.1. Every attention map of a training step
//! went through them. Here one pass per row makes the probabilities, and one more makes the
//! input gradient, `dx = scale · y ⊙ (dy − Σ dy ⊙ y)`. Other devices and dtypes take
//! candle's composed ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_operand, f32_values_and_grads, input_grad, runs_fused};

/// `softmax(scale · x)` over the last axis of `x`.
pub fn scaled_softmax_last_dim(x: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    if !runs_fused(x) || x.rank() == 0 {
        let scaled = if scale == 1.0 {
            x.clone()
        } else {
            (x * scale)?
        };
        return candle_nn::ops::softmax(&scaled, D::Minus1);
    }
    x.contiguous()?.apply_op1(ScaledSoftmax {
        scale: scale as f32,
    })
}

/// The length of the last axis of `layout`, the row each softmax runs over.
fn row_len(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

struct ScaledSoftmax {
    scale: f32,
}

impl CustomOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "fused-scaled-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_operand(self.name(), storage, layout)?;
        let n = row_len(layout);
        let scale = self.scale;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(n)
            .zip(x.par_chunks(n))
            .for_each(|(out, row)| {
                let max = row
                    .iter()
                    .map(|&v| v * scale)
                    .fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (o, &v) in out.iter_mut().zip(row) {
                    let e = (v * scale - max).exp();
                    *o = e;
                    sum += e;
                }
                for o in out.iter_mut() {
                    *o /= sum;
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        input_grad(y, grad_y, &ScaledSoftmaxGrad { scale: self.scale })
    }
}

/// The input gradient from the probabilities `y` and their gradient `dy`.
struct ScaledSoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for ScaledSoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-scaled-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_layout: &Layout,
        grad_y: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, grad_y) = f32_values_and_grads(self.name(), (y, y_layout), (grad_y, g_layout))?;
        let n = row_len(y_layout);
        let scale = self.scale;
        let mut grad_x = vec![0f32; y.len()];
        grad_x
            .par_chunks_mut(n)
            .zip(y.par_chunks(n).zip(grad_y.par_chunks(n)))
            .for_each(|(out, (y, dy))| {
                let dot: f32 = y.iter().zip(dy).map(|(&p, &d)| p * d).sum();
                for ((o, &p), &d) in out.iter_mut().zip(y).zip(dy) {
                    *o = scale * p * (d - dot);
                }
            });
        Ok((CpuStorage::F32(grad_x), y_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::{grad_diff, max_abs_diff};
    use candle_core::{Device, Var};

    fn composed(x: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
        candle_nn::ops::softmax(&(x * scale)?, D::Minus1)
    }

    #[test]
    fn matches_candles_softmax_and_its_gradient() {
        let dev = Device::Cpu;
        // Attention-map shapes: [batch·heads, queries, keys], keys of several lengths.
        for (shape, scale) in [((6, 5, 7), 0.35), ((2, 64, 77), 0.125), ((1, 3, 1), 1.0)] {
            let x = Var::from_tensor(&(Tensor::randn(0f32, 3.0, shape, &dev).unwrap())).unwrap();
            let weights = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();

            let ours = scaled_softmax_last_dim(x.as_tensor(), scale).unwrap();
            let theirs = composed(x.as_tensor(), scale).unwrap();
            assert!(max_abs_diff(&ours, &theirs) < 1e-6, "{shape:?}");

            let diff = grad_diff(&x, ours, theirs, &weights);
            assert!(diff < 1e-5, "{shape:?}: {diff}");
        }
    }

    #[test]
    fn a_causal_mask_keeps_rows_finite() {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[[0f32, f32::NEG_INFINITY], [0.0, 0.0]], &dev).unwrap();
        let x = Tensor::new(&[[1f32, 2.0], [3.0, 5.0]], &dev)
            .unwrap()
            .add(&mask)
            .unwrap();
        let y = scaled_softmax_last_dim(&x, 1.0).unwrap();
        let rows = y.to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], [1.0, 0.0]);
        assert!((rows[1][1] - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-6);
    }
}
