//! The SAFE training objective: the plain diffusion MSE between the UNet's prediction and the
//! schedule's target (noise for epsilon models, v for v-prediction), optionally weighted per
//! sample by Min-SNR-gamma (Hang et al. 2023, as diffusers' `train_text_to_image_lora.py`).

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::scheduler::NoiseSchedule;
use crate::unet::UNet2DConditionModel;

/// One batch of the denoising objective. `latents` are VAE latents already multiplied by the
/// scaling factor; `noise` is standard normal of the same shape; `timesteps` has one entry per
/// sample; `context` are the (weighted) text embeddings. Returns the scalar loss.
pub fn diffusion_loss(
    unet: &UNet2DConditionModel,
    schedule: &NoiseSchedule,
    latents: &Tensor,
    noise: &Tensor,
    timesteps: &[usize],
    context: &Tensor,
    min_snr_gamma: Option<f32>,
) -> Result<Tensor> {
    let b = latents.dim(0)?;
    if timesteps.len() != b {
        return Err(Error::Input {
            what: "timesteps",
            reason: format!("{} timesteps for a batch of {b}", timesteps.len()),
        });
    }
    // The noising happens in the inputs' dtype (f32 from the latent cache); only the UNet's
    // inputs are cast to its compute dtype.
    let noisy = schedule.add_noise(latents, noise, timesteps)?;
    let t: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    let t = Tensor::from_vec(t, b, latents.device())?;
    let compute = unet.dtype();
    let pred = unet.forward(&noisy.to_dtype(compute)?, &t, &context.to_dtype(compute)?)?;
    let target = schedule.target(latents, noise, timesteps)?;
    // The error is taken in f32 whatever the compute dtype, as diffusers'
    // `F.mse_loss(model_pred.float(), target.float())`: squared f16 errors lose the small
    // differences late in training and the mean over a batch can overflow.
    let err = (pred.to_dtype(DType::F32)? - target.to_dtype(DType::F32)?)?.sqr()?;
    match min_snr_gamma {
        None => Ok(err.mean_all()?),
        Some(gamma) => {
            // Per-sample mean, weighted, then averaged over the batch.
            let per_sample = err.flatten_from(1)?.mean(1)?;
            let w = schedule.min_snr_weights(timesteps, gamma)?;
            let w = Tensor::from_vec(w, b, latents.device())?.to_dtype(per_sample.dtype())?;
            Ok((per_sample * w)?.mean_all()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lora::Weights;
    use crate::scheduler::Prediction;
    use crate::unet::UNetConfig;
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};

    #[test]
    fn min_snr_weighting_changes_the_loss_but_keeps_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let unet = UNet2DConditionModel::new(Weights::new(vb), UNetConfig::tiny())?;
        let latents = crate::sampling::seeded_normal(1, &[2, 4, 8, 8], &dev)?;
        let noise = crate::sampling::seeded_normal(2, &[2, 4, 8, 8], &dev)?;
        let ctx = crate::sampling::seeded_normal(3, &[2, 5, 32], &dev)?;
        for pred in [Prediction::Epsilon, Prediction::VPrediction] {
            let schedule = NoiseSchedule::sd(pred);
            let plain = diffusion_loss(&unet, &schedule, &latents, &noise, &[10, 900], &ctx, None)?;
            let snr = diffusion_loss(
                &unet,
                &schedule,
                &latents,
                &noise,
                &[10, 900],
                &ctx,
                Some(5.0),
            )?;
            let (p, s) = (plain.to_scalar::<f32>()?, snr.to_scalar::<f32>()?);
            assert!(p.is_finite() && s.is_finite() && p > 0.0);
            assert!((p - s).abs() > 1e-6, "min-SNR weighting had no effect");
            let grads = snr.backward()?;
            let with_grad = varmap
                .all_vars()
                .iter()
                .filter(|v| grads.get(v.as_tensor()).is_some())
                .count();
            assert_eq!(with_grad, varmap.all_vars().len());
        }
        assert!(
            diffusion_loss(
                &unet,
                &NoiseSchedule::sd(Prediction::Epsilon),
                &latents,
                &noise,
                &[1],
                &ctx,
                None
            )
            .is_err()
        );
        Ok(())
    }
}
