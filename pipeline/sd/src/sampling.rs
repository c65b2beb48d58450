//! Image generation: the classifier-free-guided denoising loop, seeded latent noise and the
//! conversion of decoded images to RGB bytes.
//!
//! Noise comes from a small counter-based generator (SplitMix64 + Box-Muller) rather than
//! candle's RNG, so a (caption, seed) pair gives the same latents on every machine and in
//! every run: sampling is resumable per (caption, configuration, seed).

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::scheduler::{Sampler, classifier_free_guidance};
use crate::unet::UNet2DConditionModel;
use crate::vae::AutoencoderKL;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Standard normal noise of `shape`, a pure function of `seed`.
pub fn seeded_normal(seed: u64, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // Uniforms in (0, 1]: 53 random bits, never 0 so ln is finite.
        let u1 = ((splitmix64(&mut state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    Ok(Tensor::from_vec(out, shape, device)?)
}

/// Runs the sampler from `latents` (standard normal, scaled here by the sampler's
/// `init_noise_sigma`) with classifier-free guidance between `uncond` and `cond`
/// (both `[B, L, D]`). With `guidance == 1` the unconditional pass is skipped.
pub fn denoise(
    unet: &UNet2DConditionModel,
    sampler: &dyn Sampler,
    latents: &Tensor,
    cond: &Tensor,
    uncond: &Tensor,
    guidance: f64,
) -> Result<Tensor> {
    let b = latents.dim(0)?;
    if cond.dim(0)? != b || uncond.dim(0)? != b {
        return Err(Error::Input {
            what: "text conditioning",
            reason: format!(
                "batch {b} latents but {} cond / {} uncond",
                cond.dim(0)?,
                uncond.dim(0)?
            ),
        });
    }
    let dev = latents.device();
    let guided = guidance != 1.0;
    let context = if guided {
        Tensor::cat(&[uncond, cond], 0)?
    } else {
        cond.clone()
    };
    let mut x = (latents * sampler.init_noise_sigma())?;
    for (i, &t) in sampler.timesteps().iter().enumerate() {
        let input = sampler.scale_model_input(&x, i)?;
        let (input, n) = if guided {
            (Tensor::cat(&[&input, &input], 0)?, 2 * b)
        } else {
            (input, b)
        };
        let ts = Tensor::full(t as f32, n, dev)?;
        let out = unet.forward(&input, &ts, &context)?;
        let out = if guided {
            classifier_free_guidance(&out.narrow(0, 0, b)?, &out.narrow(0, b, b)?, guidance)?
        } else {
            out
        };
        // Detached, so that a UNet with trainable adapters (validation while training) does
        // not keep every step's graph alive.
        x = sampler.step(&out, i, &x)?.detach();
    }
    Ok(x)
}

/// Decodes scaled latents to RGB bytes, `[B, H, W, 3]` u8 (row-major, ready for PNG).
pub fn latents_to_rgb(vae: &AutoencoderKL, latents: &Tensor) -> Result<Tensor> {
    let images = vae.decode(&vae.unscale_latents(latents)?)?;
    let images = ((images / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
    Ok((images * 255.0)?
        .round()?
        .permute((0, 2, 3, 1))?
        .to_dtype(DType::U8)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_noise_is_reproducible_and_standard_normal() -> Result<()> {
        let dev = Device::Cpu;
        let a = seeded_normal(42, &[4, 64, 64], &dev)?;
        let b = seeded_normal(42, &[4, 64, 64], &dev)?;
        let c = seeded_normal(371, &[4, 64, 64], &dev)?;
        assert_eq!(a.to_vec3::<f32>()?, b.to_vec3::<f32>()?);
        assert_ne!(a.to_vec3::<f32>()?, c.to_vec3::<f32>()?);
        let mean = a.mean_all()?.to_scalar::<f32>()?;
        let var = a.sqr()?.mean_all()?.to_scalar::<f32>()? - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        Ok(())
    }

    #[test]
    fn tiny_models_generate_images_with_guidance() -> Result<()> {
        use crate::lora::Weights;
        use crate::scheduler::{DdimScheduler, EulerDiscreteScheduler, NoiseSchedule, Prediction};
        use crate::{UNetConfig, VaeConfig};
        use candle_nn::{VarBuilder, VarMap};

        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let unet = UNet2DConditionModel::new(Weights::new(vb.pp("unet")), UNetConfig::tiny())?;
        let vae = AutoencoderKL::new(vb.pp("vae"), VaeConfig::tiny())?;
        let latents = seeded_normal(42, &[2, 4, 8, 8], &dev)?;
        let cond = seeded_normal(1, &[2, 77, 32], &dev)?;
        let uncond = seeded_normal(2, &[2, 77, 32], &dev)?;
        let schedule = NoiseSchedule::sd(Prediction::Epsilon);
        let euler = EulerDiscreteScheduler::new(&schedule, 3)?;
        let ddim = DdimScheduler::new(schedule, 3)?;
        for sampler in [&euler as &dyn Sampler, &ddim] {
            let out = denoise(&unet, sampler, &latents, &cond, &uncond, 7.5)?;
            assert_eq!(out.dims(), &[2, 4, 8, 8]);
            let finite = out.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(finite.is_finite(), "latents blew up: {finite}");
            let rgb = latents_to_rgb(&vae, &out)?;
            assert_eq!(rgb.dims(), &[2, 16, 16, 3]);
            assert_eq!(rgb.dtype(), DType::U8);
        }
        // Guidance 1 skips the unconditional pass and equals the plain conditional run.
        let a = denoise(&unet, &ddim, &latents, &cond, &uncond, 1.0)?;
        let b = denoise(&unet, &ddim, &latents, &cond, &cond, 1.0)?;
        assert_eq!(
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?
        );
        Ok(())
    }
}
