//! 2-D convolution whose CPU backward is two matrix products and a scatter.
//!
//! candle 0.11's CPU backward for `conv2d` takes the input gradient from a direct
//! `conv_transpose2d` loop (one short dot product per pixel and kernel tap) and the weight
//! gradient from a second convolution whose kernel is the whole output gradient; on the
//! UNet's 3x3 convolutions that was most of a training step. Here the forward pass is
//! im2col and one matrix product. The backward pass recomputes the columns rather than
//! keeping them alive in the graph, takes the weight gradient as `grad · colsᵀ` and the
//! input gradient as the col2im scatter of `weightᵀ · grad`, as Caffe and PyTorch's
//! `slow_conv2d` do. A gradient is only computed for an operand that needs one, so frozen
//! LoRA bases and the noisy latents skip theirs.
//!
//! The custom path covers f32 on the CPU with groups and dilation of 1 (every convolution
//! of the UNet and the VAE); everything else, CUDA included, uses candle's own kernels.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Module, Shape, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};
use rayon::prelude::*;

use crate::cpu_op::f32_operand;

/// A convolution layer (`torch.nn.Conv2d`): weight `[out, in, k, k]` and an optional bias.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv2dConfig,
}

impl Conv2d {
    /// A layer from existing tensors.
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: Conv2dConfig) -> Self {
        Self {
            weight,
            bias,
            config,
        }
    }

    /// The kernel, `[out, in, k, k]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// Loads `weight` and `bias` under `vb` with candle-nn's shapes and initialisation.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    let layer = candle_nn::conv2d(in_channels, out_channels, kernel_size, config, vb)?;
    Ok(Conv2d::new(
        layer.weight().clone(),
        layer.bias().cloned(),
        config,
    ))
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let y = if c.groups == 1 && c.dilation == 1 {
            conv2d_op(x, &self.weight, c.padding, c.stride)?
        } else {
            x.conv2d(&self.weight, c.padding, c.stride, c.dilation, c.groups)?
        };
        match &self.bias {
            None => Ok(y),
            Some(bias) => crate::affine::add_bias(&y, bias, 1),
        }
    }
}

/// `x.conv2d(weight, padding, stride, 1, 1)`, through the im2col path on the CPU in f32.
pub fn conv2d_op(
    x: &Tensor,
    weight: &Tensor,
    padding: usize,
    stride: usize,
) -> candle_core::Result<Tensor> {
    let cpu_f32 = x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32;
    if !cpu_f32 {
        return x.conv2d(weight, padding, stride, 1, 1);
    }
    let (batch, c_in, h, w) = x.dims4()?;
    let (c_out, w_in, kh, kw) = weight.dims4()?;
    if w_in != c_in {
        candle_core::bail!("conv2d: input has {c_in} channels, the kernel expects {w_in}");
    }
    if h + 2 * padding < kh || w + 2 * padding < kw || stride == 0 {
        candle_core::bail!(
            "conv2d: a {kh}x{kw} kernel at stride {stride} does not fit a {h}x{w} input padded by {padding}"
        );
    }
    let geometry = Geometry {
        batch,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride,
        padding,
        h_out: (h + 2 * padding - kh) / stride + 1,
        w_out: (w + 2 * padding - kw) / stride + 1,
    };
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, Im2ColConv(geometry))
}

/// Sizes of one convolution call.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    h_out: usize,
    w_out: usize,
}

impl Geometry {
    /// Rows of a column matrix: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn pixels_out(&self) -> usize {
        self.h_out * self.w_out
    }

    /// The input coordinate that output `o` reads at kernel offset `k`, if inside the image.
    fn source(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k)
            .checked_sub(self.padding)
            .filter(|&i| i < size)
    }

    /// `[batch, taps, pixels_out]` columns of a contiguous `[batch, c_in, h, w]` input.
    fn im2col(&self, x: &[f32]) -> Vec<f32> {
        let taps_per_channel = self.kh * self.kw * self.pixels_out();
        let mut cols = vec![0f32; self.batch * self.taps() * self.pixels_out()];
        cols.par_chunks_mut(taps_per_channel)
            .enumerate()
            .for_each(|(plane, out)| {
                let image = &x[plane * self.h * self.w..(plane + 1) * self.h * self.w];
                for ky in 0..self.kh {
                    for kx in 0..self.kw {
                        let row = &mut out[(ky * self.kw + kx) * self.pixels_out()..]
                            [..self.pixels_out()];
                        for oy in 0..self.h_out {
                            let Some(iy) = self.source(oy, ky, self.h) else {
                                continue;
                            };
                            let line = &image[iy * self.w..(iy + 1) * self.w];
                            let dst = &mut row[oy * self.w_out..(oy + 1) * self.w_out];
                            for (ox, d) in dst.iter_mut().enumerate() {
                                if let Some(ix) = self.source(ox, kx, self.w) {
                                    *d = line[ix];
                                }
                            }
                        }
                    }
                }
            });
        cols
    }

    /// The adjoint of [`Self::im2col`]: sums each column entry back onto its input pixel.
    fn col2im(&self, cols: &[f32]) -> Vec<f32> {
        let taps_per_channel = self.kh * self.kw * self.pixels_out();
        let mut x = vec![0f32; self.batch * self.c_in * self.h * self.w];
        x.par_chunks_mut(self.h * self.w)
            .enumerate()
            .for_each(|(plane, image)| {
                let src = &cols[plane * taps_per_channel..(plane + 1) * taps_per_channel];
                for ky in 0..self.kh {
                    for kx in 0..self.kw {
                        let row =
                            &src[(ky * self.kw + kx) * self.pixels_out()..][..self.pixels_out()];
                        for oy in 0..self.h_out {
                            let Some(iy) = self.source(oy, ky, self.h) else {
                                continue;
                            };
                            let line = &mut image[iy * self.w..(iy + 1) * self.w];
                            let values = &row[oy * self.w_out..(oy + 1) * self.w_out];
                            for (ox, v) in values.iter().enumerate() {
                                if let Some(ix) = self.source(ox, kx, self.w) {
                                    line[ix] += v;
                                }
                            }
                        }
                    }
                }
            });
        x
    }
}

/// The convolution: im2col and one matrix product forward, recomputed columns backward.
struct Im2ColConv(Geometry);

impl CustomOp2 for Im2ColConv {
    fn name(&self) -> &'static str {
        "im2col-conv2d"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        w_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let dev = candle_core::Device::Cpu;
        let cols = Tensor::from_vec(
            g.im2col(f32_operand(self.name(), x, x_layout)?),
            (g.batch, g.taps(), g.pixels_out()),
            &dev,
        )?;
        let kernel = Tensor::from_slice(
            f32_operand(self.name(), weight, w_layout)?,
            (g.c_out, g.taps()),
            &dev,
        )?;
        let y = kernel
            .broadcast_matmul(&cols)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, g.c_out, g.h_out, g.w_out)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.0;
        let grad = grad_y
            .contiguous()?
            .reshape((g.batch, g.c_out, g.pixels_out()))?;
        let grad_weight = if weight.track_op() {
            let cols = x.apply_op1_no_bwd(&Im2Col(g))?;
            // [batch, out, taps], summed over the batch.
            let per_image = grad.matmul(&cols.transpose(1, 2)?)?;
            Some(per_image.sum(0)?.reshape(weight.shape())?)
        } else {
            None
        };
        let grad_x = if x.track_op() {
            let kernel_t = weight.reshape((g.c_out, g.taps()))?.t()?;
            let cols = kernel_t.broadcast_matmul(&grad)?;
            Some(cols.apply_op1_no_bwd(&Col2Im(g))?)
        } else {
            None
        };
        Ok((grad_x, grad_weight))
    }
}

/// `[batch, c_in, h, w]` → `[batch, taps, pixels_out]` columns.
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = g.im2col(f32_operand(self.name(), storage, layout)?);
        Ok((
            CpuStorage::F32(cols),
            Shape::from((g.batch, g.taps(), g.pixels_out())),
        ))
    }
}

/// `[batch, taps, pixels_out]` columns → `[batch, c_in, h, w]`, summing overlaps.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = g.col2im(f32_operand(self.name(), storage, layout)?);
        Ok((CpuStorage::F32(x), Shape::from((g.batch, g.c_in, g.h, g.w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Forward and both gradients against candle's own convolution, which the UNet's
    /// gradient tests already hold against PyTorch.
    fn matches_candle(
        shape: (usize, usize, usize, usize),
        c_out: usize,
        k: usize,
        padding: usize,
        stride: usize,
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., shape, &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.3, (c_out, shape.1, k, k), &dev)?)?;
        let ours = conv2d_op(x.as_tensor(), w.as_tensor(), padding, stride)?;
        let theirs = x.as_tensor().conv2d(w.as_tensor(), padding, stride, 1, 1)?;
        assert_eq!(ours.dims(), theirs.dims());
        // A weighted sum so every output element has its own gradient.
        let probe = Tensor::randn(0f32, 1., theirs.shape(), &dev)?;
        let max_diff = |a: &Tensor, b: &Tensor| -> candle_core::Result<f32> {
            (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
        };
        assert!(max_diff(&ours, &theirs)? < 1e-4, "forward differs");
        let g_ours = (&ours * &probe)?.sum_all()?.backward()?;
        let g_theirs = (&theirs * &probe)?.sum_all()?.backward()?;
        for (name, var) in [("input", &x), ("weight", &w)] {
            let a = g_ours.get(var.as_tensor()).expect("gradient of ours");
            let b = g_theirs.get(var.as_tensor()).expect("gradient of candle's");
            let d = max_diff(a, b)?;
            assert!(d < 1e-3, "{name} gradient differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn three_by_three_same_padding_matches_candle() -> candle_core::Result<()> {
        matches_candle((2, 5, 7, 6), 4, 3, 1, 1)
    }

    #[test]
    fn strided_downsampling_matches_candle() -> candle_core::Result<()> {
        // Square: candle's own backward takes the output padding from the height alone.
        matches_candle((2, 3, 9, 9), 6, 3, 1, 2)
    }

    #[test]
    fn pointwise_and_unpadded_kernels_match_candle() -> candle_core::Result<()> {
        matches_candle((1, 4, 5, 5), 3, 1, 0, 1)?;
        matches_candle((3, 2, 6, 6), 2, 3, 0, 1)
    }

    #[test]
    fn frozen_operands_get_no_gradient() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (1, 2, 4, 4), &dev)?)?;
        let frozen = Tensor::randn(0f32, 1., (3, 2, 3, 3), &dev)?;
        let grads = conv2d_op(x.as_tensor(), &frozen, 1, 1)?
            .sum_all()?
            .backward()?;
        assert!(grads.get(&frozen).is_none());
        assert_eq!(
            grads.get(x.as_tensor()).map(|g| g.dims().to_vec()),
            Some(vec![1, 2, 4, 4])
        );
        Ok(())
    }

    #[test]
    fn mismatched_channels_are_an_error() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &dev)?;
        let w = Tensor::zeros((3, 5, 3, 3), DType::F32, &dev)?;
        assert!(conv2d_op(&x, &w, 1, 1).is_err());
        Ok(())
    }
}
