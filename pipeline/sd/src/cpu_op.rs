//! Plumbing shared by the CPU custom ops ([`crate::conv`], [`crate::norm`], [`crate::affine`],
//! [`crate::softmax`], [`crate::geglu`], [`crate::silu`]).

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Tensor};

/// Whether a single-input op on `x` takes its fused CPU kernel: f32 on the CPU, not empty.
/// Other devices and dtypes compose candle's own ops.
pub(crate) fn runs_fused(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && x.elem_count() > 0
}

/// The input gradient of a single-input op: `grad_op` over the tensor the backward needs
/// (`saved`, the op's input or output) and the output gradient, both made contiguous.
pub(crate) fn input_grad(
    saved: &Tensor,
    grad_y: &Tensor,
    grad_op: &impl CustomOp2,
) -> candle_core::Result<Option<Tensor>> {
    let grad = saved
        .contiguous()?
        .apply_op2_no_bwd(&grad_y.contiguous()?, grad_op)?;
    Ok(Some(grad))
}

/// The contiguous f32 elements of one operand of op `op`.
pub(crate) fn f32_operand<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    if !layout.is_contiguous() {
        candle_core::bail!("{op}: operands must be contiguous");
    }
    let all = storage.as_slice::<f32>()?;
    let start = layout.start_offset();
    all.get(start..start + layout.shape().elem_count())
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: operand outside its storage")))
}

/// An element-wise gradient op's two operands, the values `x` and the gradients `grad_y`,
/// which must hold one gradient per value.
pub(crate) fn f32_values_and_grads<'a>(
    op: &str,
    x: (&'a CpuStorage, &Layout),
    grad_y: (&'a CpuStorage, &Layout),
) -> candle_core::Result<(&'a [f32], &'a [f32])> {
    let x = f32_operand(op, x.0, x.1)?;
    let grad_y = f32_operand(op, grad_y.0, grad_y.1)?;
    if x.len() != grad_y.len() {
        candle_core::bail!("{op}: {} values but {} gradients", x.len(), grad_y.len());
    }
    Ok((x, grad_y))
}

/// The three operands of a three-input op.
pub(crate) fn f32_operands<'a>(
    op: &str,
    operands: [(&'a CpuStorage, &Layout); 3],
) -> candle_core::Result<[&'a [f32]; 3]> {
    let [a, b, c] = operands;
    Ok([
        f32_operand(op, a.0, a.1)?,
        f32_operand(op, b.0, b.1)?,
        f32_operand(op, c.0, c.1)?,
    ])
}

/// Appends the per-channel sums of `partials` (`[rows, channels]` in row order, summed in
/// f64) to `packed`, the layout the gradient ops hand back in one storage.
pub(crate) fn push_channel_sums(packed: &mut Vec<f32>, partials: &[f64], channels: usize) {
    let rows = partials.len() / channels.max(1);
    packed.extend(
        (0..channels).map(|c| (0..rows).map(|r| partials[r * channels + c]).sum::<f64>() as f32),
    );
}

/// Splits `[grad_x | grad_weight | grad_bias]` and keeps the gradients whose operand
/// needs one.
pub(crate) fn unpack_grads(
    packed: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let (len, channels) = (x.elem_count(), weight.elem_count());
    let grad_x = packed.narrow(0, 0, len)?.reshape(x.shape())?;
    let grad_weight = packed.narrow(0, len, channels)?;
    let grad_bias = packed.narrow(0, len + channels, channels)?;
    Ok((
        x.track_op().then_some(grad_x),
        weight.track_op().then_some(grad_weight),
        bias.track_op().then_some(grad_bias),
    ))
}

/// Largest absolute difference between two f32 tensors of the same size (tests of the fused
/// ops against candle's composed ones).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute difference between the gradients that `ours` and `theirs` (two
/// computations of the same function of `x`) hand `x` for the loss `sum(y · weights)`.
#[cfg(test)]
pub(crate) fn grad_diff(
    x: &candle_core::Var,
    ours: Tensor,
    theirs: Tensor,
    weights: &Tensor,
) -> f32 {
    let grad = |y: Tensor| {
        let grads = y
            .mul(weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        grads.get(x.as_tensor()).unwrap().clone()
    };
    max_abs_diff(&grad(ours), &grad(theirs))
}
