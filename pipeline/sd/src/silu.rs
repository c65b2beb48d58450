//! SiLU (`x · sigmoid(x)`) with a fused CPU forward and backward.
//!
//! candle's backward for `silu` spends about nine element-wise ops, each in a fresh buffer
//! (negate, exp, add one, reciprocal, `1 - y`, two products, a sum and the accumulation),
//! and every ResNet block runs two of them after its group norms. Here one pass makes the
//! output and one pass the input gradient. The forward computes exactly what candle computes
//! (`x / (1 + exp(-x))`); other devices and dtypes take candle's op.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_operand, f32_values_and_grads, input_grad, runs_fused};

/// Below this many elements the split over threads costs more than it saves (candle's own
/// element-wise ops use the same bound).
const PARALLEL_MIN: usize = 64 * 1024;
const CHUNK: usize = 16 * 1024;

/// `x · sigmoid(x)`, element-wise.
pub fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    if !runs_fused(x) {
        return x.silu();
    }
    x.contiguous()?.apply_op1(Silu)
}

/// `silu(x)` as candle computes it for f32.
fn silu_value(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `d silu(x) / dx = s · (1 + x · (1 - s))` with `s = sigmoid(x)`.
fn silu_slope(x: f32) -> f32 {
    let s = 1.0 / (1.0 + (-x).exp());
    s * (1.0 + x * (1.0 - s))
}

/// Writes `f(i)` for every element of `out`, on several threads when it is large.
fn fill(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    if out.len() < PARALLEL_MIN {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(i);
        }
        return;
    }
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, part)| {
            let start = chunk * CHUNK;
            for (i, o) in part.iter_mut().enumerate() {
                *o = f(start + i);
            }
        });
}

struct Silu;

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "fused-silu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_operand(self.name(), storage, layout)?;
        let mut y = vec![0f32; x.len()];
        fill(&mut y, |i| silu_value(x[i]));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        input_grad(x, grad_y, &SiluGrad)
    }
}

/// The input gradient from the input `x` and the output gradient `dy`.
struct SiluGrad;

impl CustomOp2 for SiluGrad {
    fn name(&self) -> &'static str {
        "fused-silu-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad_y: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, grad_y) = f32_values_and_grads(self.name(), (x, x_layout), (grad_y, g_layout))?;
        let mut grad_x = vec![0f32; x.len()];
        fill(&mut grad_x, |i| grad_y[i] * silu_slope(x[i]));
        Ok((CpuStorage::F32(grad_x), x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::{grad_diff, max_abs_diff};
    use candle_core::{Device, Var};

    #[test]
    fn matches_candles_silu_and_its_gradient() {
        let dev = Device::Cpu;
        // ResNet activations, a time embedding, and one above the threaded size.
        for shape in [(2, 32, 16, 16), (2, 128, 1, 1), (2, 64, 32, 40)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, shape, &dev).unwrap()).unwrap();
            let weights = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();

            let ours = silu(x.as_tensor()).unwrap();
            let theirs = x.as_tensor().silu().unwrap();
            assert_eq!(max_abs_diff(&ours, &theirs), 0.0, "{shape:?}");

            let diff = grad_diff(&x, ours, theirs, &weights);
            assert!(diff < 1e-5, "{shape:?}: {diff}");
        }
    }

    #[test]
    fn a_strided_input_gives_the_same_values() {
        let x = Tensor::randn(0f32, 2.0, (4, 6), &Device::Cpu).unwrap();
        let transposed = x.t().unwrap();
        let ours = silu(&transposed).unwrap();
        let theirs = transposed.silu().unwrap();
        assert_eq!(max_abs_diff(&ours, &theirs), 0.0);
    }
}
