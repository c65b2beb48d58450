//! Per-channel scale and shift, `y = x · weight[c] + bias[c]`, with a fused CPU backward.
//!
//! Written with `broadcast_mul`/`broadcast_add`, the backward of every bias and norm weight
//! reduces the output gradient over all the other axes through candle's generic strided
//! sum, which took a tenth of a UNet training step. Here one pass over the gradient makes
//! the input, weight and bias gradients together. Other devices and dtypes take the
//! broadcast ops.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_operands, push_channel_sums, unpack_grads};

/// `x · weight + bias` along axis `axis` of `x` (both of shape `[x.dim(axis)]`).
pub fn scale_shift(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    axis: usize,
) -> candle_core::Result<Tensor> {
    let span = Span::of(x, axis)?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if t.dims() != [span.channels] {
            candle_core::bail!(
                "per-channel {name} has shape {:?}, the input has {} channels on axis {axis}",
                t.dims(),
                span.channels
            );
        }
    }
    let fused = x.device().is_cpu()
        && x.elem_count() > 0
        && [x, weight, bias].iter().all(|t| t.dtype() == DType::F32);
    if !fused {
        let mut shape = vec![1; x.rank()];
        shape[axis] = span.channels;
        return x
            .broadcast_mul(&weight.reshape(shape.as_slice())?)?
            .broadcast_add(&bias.reshape(shape)?);
    }
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, ScaleShift(span))
}

/// `x + bias` along axis `axis`.
pub fn add_bias(x: &Tensor, bias: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    // A constant weight of ones tracks no gradient, so its reduction is skipped.
    let ones = Tensor::ones(bias.shape(), bias.dtype(), bias.device())?;
    scale_shift(x, &ones, bias, axis)
}

/// `x` seen as `[outer, channels, inner]` around the channel axis.
#[derive(Debug, Clone, Copy)]
struct Span {
    outer: usize,
    channels: usize,
    inner: usize,
}

impl Span {
    fn of(x: &Tensor, axis: usize) -> candle_core::Result<Self> {
        let dims = x.dims();
        if axis >= dims.len() {
            candle_core::bail!("channel axis {axis} of a rank-{} tensor", dims.len());
        }
        Ok(Self {
            outer: dims[..axis].iter().product(),
            channels: dims[axis],
            inner: dims[axis + 1..].iter().product(),
        })
    }

    fn len(&self) -> usize {
        self.outer * self.channels * self.inner
    }
}

struct ScaleShift(Span);

impl CustomOp3 for ScaleShift {
    fn name(&self) -> &'static str {
        "scale-shift"
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
        let s = self.0;
        let [x, weight, bias] = f32_operands(
            self.name(),
            [(x, x_layout), (weight, w_layout), (bias, b_layout)],
        )?;
        let mut y = vec![0f32; s.len()];
        let rows = s.inner.max(1);
        y.par_chunks_mut(rows * s.channels)
            .zip(x.par_chunks(rows * s.channels))
            .for_each(|(out, input)| {
                // Each block is one outer index: its runs are the channels in order.
                for (c, (out, input)) in out.chunks_mut(rows).zip(input.chunks(rows)).enumerate() {
                    let (w, b) = (weight[c], bias[c]);
                    for (o, &v) in out.iter_mut().zip(input) {
                        *o = v * w + b;
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
        let s = self.0;
        let packed = x.apply_op3_no_bwd(weight, &grad_y.contiguous()?, &ScaleShiftGrad(s))?;
        unpack_grads(&packed, x, weight, bias)
    }
}

/// `[grad_x | grad_weight | grad_bias]` in one pass over the output gradient.
struct ScaleShiftGrad(Span);

impl CustomOp3 for ScaleShiftGrad {
    fn name(&self) -> &'static str {
        "scale-shift-grad"
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
        let s = self.0;
        let [x, weight, grad_y] = f32_operands(
            self.name(),
            [(x, x_layout), (weight, w_layout), (grad_y, g_layout)],
        )?;
        let rows = s.inner.max(1);
        let block = rows * s.channels;
        let mut grad_x = vec![0f32; s.len()];
        // Per outer index partial sums for each channel, added up afterwards.
        let mut partial_weight = vec![0f64; s.outer * s.channels];
        let mut partial_bias = vec![0f64; s.outer * s.channels];
        grad_x
            .par_chunks_mut(block)
            .zip(partial_weight.par_chunks_mut(s.channels))
            .zip(partial_bias.par_chunks_mut(s.channels))
            .enumerate()
            .for_each(|(o, ((dx, dw), db))| {
                let input = &x[o * block..(o + 1) * block];
                let dy = &grad_y[o * block..(o + 1) * block];
                for (c, ((dx, input), dy)) in dx
                    .chunks_mut(rows)
                    .zip(input.chunks(rows))
                    .zip(dy.chunks(rows))
                    .enumerate()
                {
                    let w = weight[c];
                    let (mut sw, mut sb) = (0f32, 0f32);
                    for ((d_out, &v), &d) in dx.iter_mut().zip(input).zip(dy) {
                        *d_out = d * w;
                        sw += d * v;
                        sb += d;
                    }
                    dw[c] += f64::from(sw);
                    db[c] += f64::from(sb);
                }
            });
        let mut packed = grad_x;
        push_channel_sums(&mut packed, &partial_weight, s.channels);
        push_channel_sums(&mut packed, &partial_bias, s.channels);
        Ok((
            CpuStorage::F32(packed),
            Shape::from(s.len() + 2 * s.channels),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    /// Forward and the three gradients against the broadcast ops, on every axis.
    #[test]
    fn scale_shift_matches_the_broadcast_ops_on_every_axis() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 4, 5, 2), &dev)?)?;
        for axis in 0..4 {
            let c = x.dim(axis)?;
            let w = Var::from_tensor(&Tensor::randn(1f32, 0.5, c, &dev)?)?;
            let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, c, &dev)?)?;
            let mut shape = vec![1; 4];
            shape[axis] = c;
            let fused = scale_shift(x.as_tensor(), w.as_tensor(), b.as_tensor(), axis)?;
            let plain = x
                .as_tensor()
                .broadcast_mul(&w.as_tensor().reshape(shape.as_slice())?)?
                .broadcast_add(&b.as_tensor().reshape(shape.as_slice())?)?;
            assert!(max_diff(&fused, &plain)? < 1e-6, "axis {axis} forward");
            let probe = Tensor::randn(0f32, 1., plain.shape(), &dev)?;
            let gf = (&fused * &probe)?.sum_all()?.backward()?;
            let gp = (&plain * &probe)?.sum_all()?.backward()?;
            for t in [x.as_tensor(), w.as_tensor(), b.as_tensor()] {
                let (a, b) = (gf.get(t).expect("fused"), gp.get(t).expect("plain"));
                assert!(max_diff(a, b)? < 1e-4, "axis {axis} gradient");
            }
        }
        Ok(())
    }

    #[test]
    fn a_bias_alone_leaves_no_weight_gradient_and_bad_shapes_are_refused() -> candle_core::Result<()>
    {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3), &dev)?)?;
        let b = Var::from_tensor(&Tensor::new(&[1f32, 2., 3.], &dev)?)?;
        let y = add_bias(x.as_tensor(), b.as_tensor(), 1)?;
        let grads = y.sum_all()?.backward()?;
        let gb = grads.get(b.as_tensor()).expect("bias gradient");
        assert_eq!(gb.to_vec1::<f32>()?, vec![2., 2., 2.]);
        assert!(add_bias(x.as_tensor(), b.as_tensor(), 0).is_err());
        assert!(add_bias(x.as_tensor(), b.as_tensor(), 2).is_err());
        Ok(())
    }
}
