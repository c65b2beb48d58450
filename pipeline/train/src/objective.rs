//! The two objectives: the VAE's (reconstruction + a small KL term) and the diffusion
//! denoising loss on cached latents and text embeddings (the base UNet and the LoRAs).

use anchor_sd::{AutoencoderKL, NoiseSchedule, UNet2DConditionModel, diffusion_loss};
use std::ops::Range;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::trainer::Objective;

/// Images and their mirrors, `[2N, 3, R, R]`: row `i` is example `i`, row `N + i` its flip.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The stacked pixels in [-1, 1].
    pub pixels: Tensor,
    /// Number of examples `N`.
    pub n: usize,
}

impl ImageSet {
    /// Rows for `indices`, each flipped or not by a coin from `rng` (the seeded random flip).
    pub fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let rows: Vec<u32> = indices
            .iter()
            .map(|&i| (i + self.n * rng.below(2) as usize) as u32)
            .collect();
        let ids = Tensor::new(rows, self.pixels.device())?;
        Ok(self.pixels.index_select(&ids, 0)?)
    }
}

/// Reconstruction MSE plus `kl_weight` times the mean KL to the standard normal.
pub struct VaeObjective<'a> {
    /// The autoencoder being trained.
    pub vae: &'a AutoencoderKL,
    /// The training images.
    pub images: &'a ImageSet,
    /// Weight of the KL term.
    pub kl_weight: f64,
}

impl Objective for VaeObjective<'_> {
    fn len(&self) -> usize {
        self.images.n
    }

    fn loss(&self, indices: &[usize], rows: Range<usize>, rng: &mut Rng) -> Result<Tensor> {
        check_rows(indices, &rows)?;
        let x = self
            .images
            .batch(indices, rng)?
            .narrow(0, rows.start, rows.len())?;
        let dist = self.vae.encode(&x)?;
        let eps = normal_rows(&dist.mean, indices.len(), &rows, rng)?;
        let z = dist.sample_with(&eps)?;
        let rec = self.vae.decode(&z)?;
        let mse = (rec - &x)?.sqr()?.mean_all()?;
        let kl = ((dist.mean.sqr()? + dist.logvar.exp()?)? - 1.0)?
            .sub(&dist.logvar)?
            .mean_all()?
            * 0.5;
        Ok((mse + (kl? * self.kl_weight)?)?)
    }
}

/// Standard normal noise for `rows` of a batch of `batch` rows, shaped like `t` (which
/// holds those rows). The whole batch's noise is drawn, so `rng` advances the same way
/// whichever rows a process computes.
fn normal_rows(t: &Tensor, batch: usize, rows: &Range<usize>, rng: &mut Rng) -> Result<Tensor> {
    let per_row = t.elem_count() / rows.len().max(1);
    let all = rng.normals(per_row * batch);
    let mine = all[rows.start * per_row..rows.end * per_row].to_vec();
    Ok(Tensor::from_vec(mine, t.dims(), &Device::Cpu)?
        .to_device(t.device())?
        .to_dtype(t.dtype())?)
}

/// `rows` must be a non-empty part of the batch.
fn check_rows(indices: &[usize], rows: &Range<usize>) -> Result<()> {
    if rows.is_empty() || rows.end > indices.len() {
        return Err(Error::Config {
            what: "batch rows",
            reason: format!("rows {rows:?} of a batch of {}", indices.len()),
        });
    }
    Ok(())
}

/// Reconstruction MSE of `images` through the latent means (no sampling).
pub fn reconstruction_mse(vae: &AutoencoderKL, images: &Tensor) -> Result<f64> {
    let dist = vae.encode(images)?;
    let rec = vae.decode(dist.mode())?;
    Ok((rec - images)?
        .sqr()?
        .mean_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_scalar::<f32>()? as f64)
}

/// Cached VAE latent distributions, `[2N, C, h, w]` (row `N + i` = flipped example `i`),
/// and text embeddings `[N, 77, D]`.
#[derive(Debug, Clone)]
pub struct LatentSet {
    /// Latent means.
    pub mean: Tensor,
    /// Latent log-variances.
    pub logvar: Tensor,
    /// Number of examples.
    pub n: usize,
    /// The VAE's scaling factor.
    pub scaling_factor: f64,
}

/// The denoising objective on cached latents and embeddings.
pub struct DiffusionObjective<'a> {
    /// The UNet (with LoRA adapters, or fully trainable for the demo base).
    pub unet: &'a UNet2DConditionModel,
    /// The training noise schedule.
    pub schedule: &'a NoiseSchedule,
    /// Cached latents.
    pub latents: &'a LatentSet,
    /// Cached (possibly weighted) text embeddings, `[N, L, D]`.
    pub embeddings: &'a Tensor,
    /// Min-SNR-gamma, when enabled.
    pub min_snr_gamma: Option<f32>,
    /// Caption dropout for classifier-free guidance: the empty prompt's embedding `[1, L, D]`
    /// replaces a caption with this probability (the demo base trains with 0.1, as SD did).
    pub cond_dropout: Option<(&'a Tensor, f64)>,
}

impl Objective for DiffusionObjective<'_> {
    fn len(&self) -> usize {
        self.latents.n
    }

    fn loss(&self, indices: &[usize], rows: Range<usize>, rng: &mut Rng) -> Result<Tensor> {
        check_rows(indices, &rows)?;
        let dev = self.latents.mean.device();
        let n = self.latents.n;
        let flipped: Vec<u32> = indices
            .iter()
            .map(|&i| (i + n * rng.below(2) as usize) as u32)
            .collect();
        let flipped = Tensor::new(&flipped[rows.clone()], dev)?;
        let mean = self.latents.mean.index_select(&flipped, 0)?;
        let logvar = self.latents.logvar.index_select(&flipped, 0)?;
        let eps = normal_rows(&mean, indices.len(), &rows, rng)?;
        let z = (mean + ((logvar * 0.5)?.exp()? * eps)?)?;
        let latents = (z * self.latents.scaling_factor)?;
        let noise = normal_rows(&latents, indices.len(), &rows, rng)?;
        let timesteps: Vec<usize> = indices
            .iter()
            .map(|_| rng.below(self.schedule.len() as u64) as usize)
            .collect();
        let timesteps = timesteps[rows.clone()].to_vec();
        let ids: Vec<u32> = indices[rows.clone()].iter().map(|&i| i as u32).collect();
        let mut ctx = self.embeddings.index_select(&Tensor::new(ids, dev)?, 0)?;
        if let Some((empty, p)) = self.cond_dropout {
            let keep: Vec<f32> = indices
                .iter()
                .map(|_| if rng.uniform() < p { 0.0 } else { 1.0 })
                .collect();
            let keep = Tensor::from_vec(
                keep[rows.clone()].to_vec(),
                (rows.len(), 1, 1),
                &Device::Cpu,
            )?
            .to_device(dev)?
            .to_dtype(ctx.dtype())?;
            let drop = keep.affine(-1.0, 1.0)?;
            ctx = (ctx.broadcast_mul(&keep)? + empty.broadcast_mul(&drop)?)?;
        }
        Ok(diffusion_loss(
            self.unet,
            self.schedule,
            &latents,
            &noise,
            &timesteps,
            &ctx,
            self.min_snr_gamma,
        )?)
    }
}
