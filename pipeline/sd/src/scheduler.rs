//! Noise schedules and samplers, ported from diffusers' `schedulers/scheduling_ddpm.py`
//! (betas, `add_noise`, `get_velocity`), `scheduling_ddim.py` (`step`, eta = 0) and
//! `scheduling_euler_discrete.py` (`step`, no churn), with Stable Diffusion's settings.
//!
//! The schedule is computed in f32 with torch's `linspace` and sequential `cumprod`, so the
//! numbers match diffusers' to float precision.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// What the UNet predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The added noise (SD 1.x, SD 2.1-base).
    Epsilon,
    /// `v = sqrt(a) * noise - sqrt(1 - a) * x0` (SD 2.1 768).
    VPrediction,
}

/// How betas run from `beta_start` to `beta_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BetaSchedule {
    /// Linear in beta.
    Linear,
    /// Linear in sqrt(beta), squared: Stable Diffusion's schedule.
    ScaledLinear,
}

/// The DDPM forward process shared by training and every sampler.
#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    /// Per-step betas.
    pub betas: Vec<f32>,
    /// Cumulative products of `1 - beta` (`alphas_cumprod`).
    pub alphas_cumprod: Vec<f32>,
    /// What the model predicts.
    pub prediction: Prediction,
}

/// torch.linspace in f32: the first half counts up from `start`, the second down from `end`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

impl NoiseSchedule {
    /// A schedule of `steps` training timesteps.
    pub fn new(
        steps: usize,
        beta_start: f32,
        beta_end: f32,
        kind: BetaSchedule,
        prediction: Prediction,
    ) -> Self {
        let betas: Vec<f32> = match kind {
            BetaSchedule::Linear => linspace_f32(beta_start, beta_end, steps),
            BetaSchedule::ScaledLinear => linspace_f32(beta_start.sqrt(), beta_end.sqrt(), steps)
                .into_iter()
                .map(|b| b * b)
                .collect(),
        };
        let mut acc = 1f32;
        let alphas_cumprod = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        Self {
            betas,
            alphas_cumprod,
            prediction,
        }
    }

    /// Stable Diffusion's schedule: 1000 steps, scaled-linear betas from 0.00085 to 0.012.
    pub fn sd(prediction: Prediction) -> Self {
        Self::new(1000, 0.00085, 0.012, BetaSchedule::ScaledLinear, prediction)
    }

    /// Number of training timesteps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Whether the schedule has no steps.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    fn alpha(&self, t: usize) -> Result<f32> {
        self.alphas_cumprod
            .get(t)
            .copied()
            .ok_or_else(|| Error::Input {
                what: "timestep",
                reason: format!("{t} outside the {}-step schedule", self.len()),
            })
    }

    /// Per-sample coefficients `[B, 1, 1, 1]` from a function of alphas_cumprod.
    fn coeffs(&self, timesteps: &[usize], like: &Tensor, f: impl Fn(f32) -> f32) -> Result<Tensor> {
        let b = like.dim(0)?;
        if timesteps.len() != b {
            return Err(Error::Input {
                what: "timesteps",
                reason: format!("{} timesteps for a batch of {b}", timesteps.len()),
            });
        }
        let v = timesteps
            .iter()
            .map(|&t| self.alpha(t).map(&f))
            .collect::<Result<Vec<f32>>>()?;
        let mut shape = vec![b];
        shape.resize(like.rank(), 1);
        Ok(Tensor::from_vec(v, shape, like.device())?.to_dtype(like.dtype())?)
    }

    /// `sqrt(a_t) x0 + sqrt(1 - a_t) noise`, one timestep per sample.
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, timesteps: &[usize]) -> Result<Tensor> {
        let sa = self.coeffs(timesteps, x0, |a| a.sqrt())?;
        let s1a = self.coeffs(timesteps, x0, |a| (1.0 - a).sqrt())?;
        Ok((x0.broadcast_mul(&sa)? + noise.broadcast_mul(&s1a)?)?)
    }

    /// `sqrt(a_t) noise - sqrt(1 - a_t) x0` (diffusers' `get_velocity`).
    pub fn velocity(&self, x0: &Tensor, noise: &Tensor, timesteps: &[usize]) -> Result<Tensor> {
        let sa = self.coeffs(timesteps, x0, |a| a.sqrt())?;
        let s1a = self.coeffs(timesteps, x0, |a| (1.0 - a).sqrt())?;
        Ok((noise.broadcast_mul(&sa)? - x0.broadcast_mul(&s1a)?)?)
    }

    /// The training target for the configured prediction type.
    pub fn target(&self, x0: &Tensor, noise: &Tensor, timesteps: &[usize]) -> Result<Tensor> {
        match self.prediction {
            Prediction::Epsilon => Ok(noise.clone()),
            Prediction::VPrediction => self.velocity(x0, noise, timesteps),
        }
    }

    /// Signal-to-noise ratio `a_t / (1 - a_t)`.
    pub fn snr(&self, t: usize) -> Result<f32> {
        let a = self.alpha(t)?;
        Ok(a / (1.0 - a))
    }

    /// Min-SNR-gamma loss weights (Hang et al. 2023), as diffusers' training scripts compute
    /// them: `min(snr, gamma) / snr` for epsilon, `min(snr, gamma) / (snr + 1)` for v.
    pub fn min_snr_weights(&self, timesteps: &[usize], gamma: f32) -> Result<Vec<f32>> {
        timesteps
            .iter()
            .map(|&t| {
                let snr = self.snr(t)?;
                let m = snr.min(gamma);
                Ok(match self.prediction {
                    Prediction::Epsilon => m / snr,
                    Prediction::VPrediction => m / (snr + 1.0),
                })
            })
            .collect()
    }

    /// `(x0, eps)` from the model output at a sample with cumulative alpha `a`.
    fn split_prediction(&self, out: &Tensor, x: &Tensor, a: f32) -> Result<(Tensor, Tensor)> {
        let (sa, s1a) = (a.sqrt() as f64, (1.0 - a).sqrt() as f64);
        Ok(match self.prediction {
            Prediction::Epsilon => {
                let x0 = ((x - (out * s1a)?)? / sa)?;
                (x0, out.clone())
            }
            Prediction::VPrediction => {
                let x0 = ((x * sa)? - (out * s1a)?)?;
                let eps = ((out * sa)? + (x * s1a)?)?;
                (x0, eps)
            }
        })
    }
}

/// Classifier-free guidance: `uncond + scale * (cond - uncond)`.
pub fn classifier_free_guidance(uncond: &Tensor, cond: &Tensor, scale: f64) -> Result<Tensor> {
    Ok((uncond + ((cond - uncond)? * scale)?)?)
}

/// A sampler: the timesteps to visit and one denoising step.
pub trait Sampler {
    /// Timesteps fed to the UNet, in visiting order.
    fn timesteps(&self) -> &[f64];
    /// Multiplies the initial standard normal latents.
    fn init_noise_sigma(&self) -> f64;
    /// Scales the latents before they enter the UNet at step `i`.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> Result<Tensor>;
    /// The latents after step `i`, given the (guided) model output.
    fn step(&self, model_output: &Tensor, i: usize, sample: &Tensor) -> Result<Tensor>;
}

fn step_index_error(i: usize, n: usize) -> Error {
    Error::Input {
        what: "step index",
        reason: format!("{i} outside {n} inference steps"),
    }
}

/// DDIM with eta = 0 and SD's settings (`timestep_spacing="leading"`, `steps_offset=1`,
/// `set_alpha_to_one=False`, no sample clipping).
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    schedule: NoiseSchedule,
    timesteps: Vec<f64>,
    step_ratio: usize,
    final_alpha_cumprod: f32,
}

impl DdimScheduler {
    /// `steps` inference steps with steps_offset 1.
    pub fn new(schedule: NoiseSchedule, steps: usize) -> Result<Self> {
        Self::with_offset(schedule, steps, 1)
    }

    /// `steps` inference steps with an explicit `steps_offset`.
    pub fn with_offset(schedule: NoiseSchedule, steps: usize, offset: usize) -> Result<Self> {
        let n = schedule.len();
        if steps == 0 || steps > n {
            return Err(Error::Config {
                what: "DDIM scheduler",
                reason: format!("{steps} inference steps for a {n}-step schedule"),
            });
        }
        let step_ratio = n / steps;
        let timesteps = (0..steps)
            .rev()
            .map(|i| (i * step_ratio + offset) as f64)
            .collect();
        let final_alpha_cumprod = schedule.alphas_cumprod[0];
        Ok(Self {
            schedule,
            timesteps,
            step_ratio,
            final_alpha_cumprod,
        })
    }
}

impl Sampler for DdimScheduler {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    fn scale_model_input(&self, sample: &Tensor, _i: usize) -> Result<Tensor> {
        Ok(sample.clone())
    }

    fn step(&self, model_output: &Tensor, i: usize, sample: &Tensor) -> Result<Tensor> {
        let t = *self
            .timesteps
            .get(i)
            .ok_or_else(|| step_index_error(i, self.timesteps.len()))? as usize;
        let a_t = self.schedule.alpha(t)?;
        let a_prev = match t.checked_sub(self.step_ratio) {
            Some(p) => self.schedule.alpha(p)?,
            None => self.final_alpha_cumprod,
        };
        let (x0, eps) = self.schedule.split_prediction(model_output, sample, a_t)?;
        Ok(((x0 * a_prev.sqrt() as f64)? + (eps * (1.0 - a_prev).sqrt() as f64)?)?)
    }
}

/// Euler (Karras et al. 2022, Algorithm 2 without churn) with SD's linspace timesteps.
#[derive(Debug, Clone)]
pub struct EulerDiscreteScheduler {
    prediction: Prediction,
    timesteps: Vec<f64>,
    /// `steps + 1` sigmas, the last 0.
    sigmas: Vec<f32>,
}

impl EulerDiscreteScheduler {
    /// `steps` inference steps spread evenly over the training timesteps.
    pub fn new(schedule: &NoiseSchedule, steps: usize) -> Result<Self> {
        let n = schedule.len();
        if steps == 0 || n == 0 {
            return Err(Error::Config {
                what: "Euler scheduler",
                reason: format!("{steps} inference steps for a {n}-step schedule"),
            });
        }
        let all: Vec<f64> = schedule
            .alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt() as f64)
            .collect();
        // np.linspace(0, n - 1, steps)[::-1] in f64.
        let last = (n - 1) as f64;
        let timesteps: Vec<f64> = (0..steps)
            .map(|i| {
                if steps == 1 {
                    0.0
                } else {
                    last * i as f64 / (steps - 1) as f64
                }
            })
            .rev()
            .collect();
        let mut sigmas: Vec<f32> = timesteps
            .iter()
            .map(|&t| {
                // np.interp over integer knots.
                let lo = t.floor() as usize;
                let hi = (lo + 1).min(n - 1);
                let frac = t - lo as f64;
                (all[lo] * (1.0 - frac) + all[hi] * frac) as f32
            })
            .collect();
        sigmas.push(0.0);
        let timesteps = timesteps.iter().map(|&t| t as f32 as f64).collect();
        Ok(Self {
            prediction: schedule.prediction,
            timesteps,
            sigmas,
        })
    }

    /// The `steps + 1` sigmas (last 0).
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    fn sigma(&self, i: usize) -> Result<f64> {
        self.sigmas
            .get(i)
            .map(|&s| s as f64)
            .ok_or_else(|| step_index_error(i, self.timesteps.len()))
    }
}

impl Sampler for EulerDiscreteScheduler {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        // diffusers: the max sigma itself for "linspace" spacing.
        self.sigmas.iter().copied().fold(0f32, f32::max) as f64
    }

    fn scale_model_input(&self, sample: &Tensor, i: usize) -> Result<Tensor> {
        let s = self.sigma(i)?;
        Ok((sample / (s * s + 1.0).sqrt())?)
    }

    fn step(&self, model_output: &Tensor, i: usize, sample: &Tensor) -> Result<Tensor> {
        if i + 1 >= self.sigmas.len() {
            return Err(step_index_error(i, self.timesteps.len()));
        }
        let sigma = self.sigma(i)?;
        let next = self.sigma(i + 1)?;
        let x0 = match self.prediction {
            Prediction::Epsilon => (sample - (model_output * sigma)?)?,
            Prediction::VPrediction => {
                let c = sigma * sigma + 1.0;
                ((model_output * (-sigma / c.sqrt()))? + (sample / c)?)?
            }
        };
        let derivative = ((sample - x0)? / sigma)?;
        Ok((sample + (derivative * (next - sigma))?)?)
    }
}

/// Timesteps as a `[B]` f32 tensor for the UNet.
pub fn timestep_tensor(t: f64, batch: usize, device: &candle_core::Device) -> Result<Tensor> {
    Ok(Tensor::full(t as f32, batch, device)?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_schedule_matches_known_endpoints() {
        let s = NoiseSchedule::sd(Prediction::Epsilon);
        assert_eq!(s.len(), 1000);
        assert!((s.betas[0] - 0.00085).abs() < 1e-9);
        assert!((s.betas[999] - 0.012).abs() < 1e-8);
        // alphas_cumprod[999] of SD is about 0.0047 (sigma_max ~ 14.6).
        assert!(
            (s.alphas_cumprod[999] - 0.004_660).abs() < 2e-5,
            "{}",
            s.alphas_cumprod[999]
        );
    }

    #[test]
    fn ddim_timesteps_are_leading_with_offset() -> Result<()> {
        let d = DdimScheduler::new(NoiseSchedule::sd(Prediction::Epsilon), 10)?;
        assert_eq!(d.timesteps()[0], 901.0);
        assert_eq!(d.timesteps()[9], 1.0);
        Ok(())
    }

    #[test]
    fn ddim_recovers_x0_at_the_last_step_when_the_model_is_exact() -> Result<()> {
        // With eps = the true noise, the DDIM update moves exactly along the true trajectory.
        let dev = candle_core::Device::Cpu;
        let s = NoiseSchedule::sd(Prediction::Epsilon);
        let d = DdimScheduler::new(s.clone(), 4)?;
        let x0 = Tensor::new(&[[0.5f32, -0.25]], &dev)?;
        let noise = Tensor::new(&[[1.0f32, 2.0]], &dev)?;
        let t0 = d.timesteps()[0] as usize;
        let xt = s.add_noise(&x0, &noise, &[t0])?;
        let prev = d.step(&noise, 0, &xt)?;
        let expect = s.add_noise(&x0, &noise, &[t0 - 250])?;
        let diff = (prev - expect)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }
}
