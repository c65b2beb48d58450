//! Validation images: while a LoRA trains, the UNet with its adapters as they stand samples
//! fixed prompts every `every` steps and after the last step, as diffusers' training scripts
//! do with `--validation_prompt` (DDIM, [`SAMPLING_STEPS`] steps, guidance [`GUIDANCE`]).
//!
//! Prompt `i` is sampled from seeded noise (the run's seed plus `i`), so the images of two
//! steps differ only by what the LoRA learnt in between. They are written to
//! `validation/step-NNNNNNNN/NN.png` beside the weights, before that step's checkpoint: a run
//! resumed from the checkpoint finds them, and one resumed from an earlier checkpoint writes
//! the same bytes again (the weights are restored exactly and the noise is seeded).

use std::path::{Path, PathBuf};

use anchor_sd::sampling::{denoise, latents_to_rgb, seeded_normal};
use anchor_sd::{
    AutoencoderKL, DdimScheduler, FittedPrompt, NoiseSchedule, TextConditioner,
    UNet2DConditionModel,
};
use candle_core::Tensor;

use crate::error::{Error, IoAt, Result};
use crate::settings::ValidationSettings;

/// Denoising steps of a validation image (the diffusers LoRA script's default).
pub const SAMPLING_STEPS: usize = 30;
/// Classifier-free guidance scale of a validation image.
pub const GUIDANCE: f64 = 7.5;

/// Samples a LoRA's validation prompts as it trains.
pub struct Validator<'a> {
    unet: &'a UNet2DConditionModel,
    vae: &'a AutoencoderKL,
    schedule: NoiseSchedule,
    cond: Tensor,
    uncond: Tensor,
    seeds: Vec<u64>,
    latent_side: usize,
    every: u64,
    last_step: u64,
    dir: PathBuf,
}

impl<'a> Validator<'a> {
    /// A validator of `prompts` (fitted to the base's tokenizer) for a run of `last_step`
    /// steps at `resolution` pixels, writing under `dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: &ValidationSettings,
        prompts: &[FittedPrompt],
        text: &TextConditioner,
        unet: &'a UNet2DConditionModel,
        vae: &'a AutoencoderKL,
        schedule: NoiseSchedule,
        (resolution, seed, last_step): (usize, u64, u64),
        dir: PathBuf,
    ) -> Result<Self> {
        let factor = vae.config().downsample_factor();
        if prompts.is_empty() || resolution == 0 || !resolution.is_multiple_of(factor) {
            return Err(Error::Config {
                what: "validation",
                reason: format!(
                    "{} prompts at {resolution} px (a multiple of {factor} is needed)",
                    prompts.len()
                ),
            });
        }
        // The UNet computes in its own dtype (the precision of the run); the VAE decodes in f32.
        let compute = unet.dtype();
        Ok(Validator {
            unet,
            vae,
            schedule,
            cond: text.encode(prompts)?.to_dtype(compute)?,
            uncond: text
                .empty()
                .repeat((prompts.len(), 1, 1))?
                .to_dtype(compute)?,
            seeds: (0..prompts.len() as u64)
                .map(|i| seed.wrapping_add(i))
                .collect(),
            latent_side: resolution / factor,
            every: settings.every,
            last_step,
            dir,
        })
    }

    /// Whether `step` gets images.
    pub fn due(&self, step: u64) -> bool {
        step == self.last_step || (self.every > 0 && step.is_multiple_of(self.every))
    }

    /// The folder of `step`'s images.
    pub fn step_dir(&self, step: u64) -> PathBuf {
        self.dir.join(format!("step-{step:08}"))
    }

    /// Samples every prompt with the adapters as they are now and writes the images of
    /// `step`, each whole or not at all.
    pub fn write(&self, step: u64) -> Result<Vec<PathBuf>> {
        let device = self.cond.device();
        let channels = self.vae.config().latent_channels;
        let side = self.latent_side;
        let noise = self
            .seeds
            .iter()
            .map(|&s| seeded_normal(s, &[1, channels, side, side], device))
            .collect::<anchor_sd::Result<Vec<_>>>()?;
        let sampler = DdimScheduler::new(self.schedule.clone(), SAMPLING_STEPS)?;
        let dtype = self.cond.dtype();
        let latents = Tensor::cat(&noise, 0)?.to_dtype(dtype)?;
        let x = denoise(
            self.unet,
            &sampler,
            &latents,
            &self.cond,
            &self.uncond,
            GUIDANCE,
        )?;
        let rgb = latents_to_rgb(self.vae, &x.detach().to_dtype(candle_core::DType::F32)?)?;
        let (batch, height, width, _) = rgb.dims4()?;
        let dir = self.step_dir(step);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let mut written = Vec::with_capacity(batch);
        for i in 0..batch {
            let data = rgb.get(i)?.flatten_all()?.to_vec1::<u8>()?;
            let path = dir.join(format!("{i:02}.png"));
            write_png(&path, width, height, data)?;
            written.push(path);
        }
        Ok(written)
    }
}

fn write_png(path: &Path, width: usize, height: usize, rgb: Vec<u8>) -> Result<()> {
    let bad = |reason: String| Error::Input {
        what: path.display().to_string(),
        reason,
    };
    let image = image::RgbImage::from_raw(
        u32::try_from(width).map_err(|e| bad(e.to_string()))?,
        u32::try_from(height).map_err(|e| bad(e.to_string()))?,
        rgb,
    )
    .ok_or_else(|| bad(format!("{width}x{height} RGB does not match its bytes")))?;
    anchor_plot::save_png(&image, path).at(path)
}
