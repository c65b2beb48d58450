//! diffusers' GEGLU activation, `value · gelu(gate)` over the two halves of the last axis,
//! with a fused CPU forward and backward.
//!
//! Composed from candle's ops it is two `narrow`s, `gelu_erf` and a product, and its
//! backward the product's two products, the eight ops of `gelu_erf`'s derivative and two
//! zero-padded `narrow` gradients added together, each in a fresh buffer. Here one pass makes
//! the output and one more the whole input gradient. The forward computes exactly what
//! candle's ops compute (same `erf`, same order); other devices and dtypes take those ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_operand, input_grad, runs_fused};

/// `value · gelu_erf(gate)`, where `value` and `gate` are the first and second half of the
/// last axis of `h` (diffusers' `GEGLU` after its projection).
pub fn geglu(h: &Tensor) -> candle_core::Result<Tensor> {
    let width = h.dim(D::Minus1)?;
    if width % 2 != 0 {
        candle_core::bail!("geglu: the last axis must hold value and gate, got width {width}");
    }
    let half = width / 2;
    if !runs_fused(h) {
        let value = h.narrow(D::Minus1, 0, half)?;
        let gate = h.narrow(D::Minus1, half, half)?;
        return value * gate.gelu_erf()?;
    }
    h.contiguous()?.apply_op1(Geglu)
}

/// `erf(x / √2)`, the one costly part of both the GELU and its slope.
fn erf_scaled(x: f32) -> f32 {
    candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2)
}

/// `gelu_erf(x)` as candle computes it for f32, from `erf_scaled(x)`.
fn gelu(x: f32, erf: f32) -> f32 {
    (erf + 1.) * 0.5 * x
}

/// `d gelu_erf(x) / dx = Φ(x) + x φ(x)`, from `erf_scaled(x)`.
fn gelu_slope(x: f32, erf: f32) -> f32 {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1. + erf) + FRAC_1_SQRT_2PI * (-0.5 * x * x).exp() * x
}

/// The row width (value and gate) of `layout`.
fn row_width(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(2).max(2)
}

struct Geglu;

impl CustomOp1 for Geglu {
    fn name(&self) -> &'static str {
        "fused-geglu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = f32_operand(self.name(), storage, layout)?;
        let width = row_width(layout);
        let half = width / 2;
        let mut y = vec![0f32; h.len() / 2];
        y.par_chunks_mut(half)
            .zip(h.par_chunks(width))
            .for_each(|(out, row)| {
                let (value, gate) = row.split_at(half);
                for ((o, &v), &g) in out.iter_mut().zip(value).zip(gate) {
                    *o = v * gelu(g, erf_scaled(g));
                }
            });
        let mut dims = layout.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = half;
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(&self, h: &Tensor, _y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        input_grad(h, grad_y, &GegluGrad)
    }
}

/// The gradient of both halves from the input `h` and the output gradient `dy`.
struct GegluGrad;

impl CustomOp2 for GegluGrad {
    fn name(&self) -> &'static str {
        "fused-geglu-grad"
    }

    fn cpu_fwd(
        &self,
        h: &CpuStorage,
        h_layout: &Layout,
        grad_y: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = f32_operand(self.name(), h, h_layout)?;
        let grad_y = f32_operand(self.name(), grad_y, g_layout)?;
        if h.len() != 2 * grad_y.len() {
            candle_core::bail!(
                "{}: {} inputs but {} output gradients",
                self.name(),
                h.len(),
                grad_y.len()
            );
        }
        let width = row_width(h_layout);
        let half = width / 2;
        let mut grad_h = vec![0f32; h.len()];
        grad_h
            .par_chunks_mut(width)
            .zip(h.par_chunks(width).zip(grad_y.par_chunks(half)))
            .for_each(|(out, (row, dy))| {
                let (value, gate) = row.split_at(half);
                let (grad_value, grad_gate) = out.split_at_mut(half);
                for (((dv, dg), (&v, &g)), &d) in grad_value
                    .iter_mut()
                    .zip(grad_gate.iter_mut())
                    .zip(value.iter().zip(gate))
                    .zip(dy)
                {
                    let erf = erf_scaled(g);
                    *dv = d * gelu(g, erf);
                    *dg = d * v * gelu_slope(g, erf);
                }
            });
        Ok((CpuStorage::F32(grad_h), h_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::{grad_diff, max_abs_diff};
    use candle_core::{DType, Device, Var};

    fn composed(h: &Tensor) -> candle_core::Result<Tensor> {
        let half = h.dim(D::Minus1)? / 2;
        h.narrow(D::Minus1, 0, half)? * h.narrow(D::Minus1, half, half)?.gelu_erf()?
    }

    #[test]
    fn matches_candles_composed_geglu_and_its_gradient() {
        let dev = Device::Cpu;
        // Feed-forward shapes: [batch, tokens, 2 · 4 · channels].
        for shape in [(2, 5, 16), (1, 64, 256), (3, 1, 2)] {
            let h = Var::from_tensor(&Tensor::randn(0f32, 2.0, shape, &dev).unwrap()).unwrap();
            let weights = Tensor::randn(0f32, 1.0, (shape.0, shape.1, shape.2 / 2), &dev).unwrap();

            let ours = geglu(h.as_tensor()).unwrap();
            let theirs = composed(h.as_tensor()).unwrap();
            assert_eq!(max_abs_diff(&ours, &theirs), 0.0, "{shape:?}");

            let diff = grad_diff(&h, ours, theirs, &weights);
            assert!(diff < 1e-5, "{shape:?}: {diff}");
        }
    }

    #[test]
    fn an_odd_width_is_an_error() {
        let h = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let err = geglu(&h).unwrap_err().to_string();
        assert!(err.contains("width 3"), "{err}");
    }
}
