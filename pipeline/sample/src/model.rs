//! Which weights a run uses and how they are loaded: the train manifest, `--base`/`--lora`
//! overrides, content digests for the fingerprint, and a loaded pipeline that turns prompts
//! and seeds into RGB images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anchor_clip_tokenizer::{ClipTokenizer, END_ID, START_ID};
use anchor_sd::sampling::{denoise, latents_to_rgb, seeded_normal};
use anchor_sd::{
    AutoencoderKL, ClipTextModel, DdimScheduler, EulerDiscreteScheduler, FittedPrompt,
    NoiseSchedule, Prediction, Sampler, SpecialTokens, SubjectSpan, TextConditioner,
    UNet2DConditionModel, UNetConfig, VaeConfig, Weighting, Weights,
};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::configuration::SchedulerKind;
use crate::error::{Error, Result};

/// Where `anchor train` records what it wrote, relative to the output directory.
pub const MANIFEST: &str = "train/models/manifest.json";

/// The resolution used when neither the flag nor the manifest gives one (SD 1.x's).
pub const DEFAULT_RESOLUTION: usize = 512;

/// One LoRA entry of the train manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestLora {
    /// `pytorch_lora_weights.safetensors`.
    pub path: PathBuf,
    /// sha256 of that file as train wrote it.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// `<out>/train/models/manifest.json`, written by `anchor train`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    /// The base diffusers folder training used.
    pub base: PathBuf,
    /// Its digest.
    pub base_id: String,
    /// The resolution it was trained at.
    #[serde(default)]
    pub resolution: Option<usize>,
    /// LoRA files by configuration name (`lora`, `safe`).
    #[serde(default)]
    pub loras: BTreeMap<String, ManifestLora>,
}

impl Manifest {
    /// Reads the manifest under `out`; `None` when training has not written one. Relative
    /// paths are taken as they are when they exist, else relative to the manifest's folder.
    pub fn read(out: &Path) -> Result<Option<(PathBuf, Manifest)>> {
        let path = out.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mut m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let fix = |p: &Path| -> PathBuf {
            if p.is_relative() && !p.exists() {
                dir.join(p)
            } else {
                p.to_path_buf()
            }
        };
        m.base = fix(&m.base);
        for lora in m.loras.values_mut() {
            lora.path = fix(&lora.path);
        }
        Ok(Some((path, m)))
    }
}

/// A configuration's trained weights and their content hash: LoRA adapters, or a whole
/// UNet when the configuration was fully fine-tuned (`anchor train --full`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraFile {
    /// The safetensors file.
    pub path: PathBuf,
    /// Its sha256 (hex).
    pub sha256: String,
    /// Whether the file is a whole UNet that replaces the base's, not adapters.
    pub full_unet: bool,
}

/// The weights a run uses, each with the content id that goes into the fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSet {
    /// The base diffusers folder.
    pub base: PathBuf,
    /// Its digest (the manifest's `base_id` when the manifest's base is used).
    pub base_id: String,
    /// LoRA files by name (only those the requested configurations need).
    pub loras: BTreeMap<String, LoraFile>,
    /// The resolution the manifest recorded, if any.
    pub trained_resolution: Option<usize>,
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct ModelChoice {
    /// `--base PATH`.
    pub base: Option<PathBuf>,
    /// `--lora NAME=PATH` (a bare PATH is keyed `*`: every LoRA configuration uses it).
    pub loras: BTreeMap<String, PathBuf>,
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    anchor_digest::sha256_file(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The weight files that identify a base model, in digest order.
const BASE_FILES: [&str; 3] = [
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
];

/// Digest of a diffusers folder: sha256 over `path` + hex sha256 of its UNet, VAE and text
/// encoder weights, the same `base_id` that `anchor train` records in its manifest, so a
/// base has one id however it is addressed (a copy or a renamed folder keeps it).
pub fn base_digest(base: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for rel in BASE_FILES {
        hasher.update(rel.as_bytes());
        hasher.update(sha256_file(&base.join(rel))?.as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

impl ModelSet {
    /// Resolves the base and the LoRAs `needed` (name → the configuration that needs it)
    /// from the user's choice and the train manifest under `out`.
    pub fn resolve(
        out: &Path,
        choice: &ModelChoice,
        needed: &BTreeMap<&'static str, &'static str>,
    ) -> Result<ModelSet> {
        let manifest = Manifest::read(out)?;
        let base = match (&choice.base, &manifest) {
            (Some(b), _) => b.clone(),
            (None, Some((_, m))) => m.base.clone(),
            (None, None) => {
                return Err(Error::NoBase {
                    reason: format!("{} does not exist", out.join(MANIFEST).display()),
                });
            }
        };
        for dir in ["unet", "vae", "text_encoder"] {
            if !base.join(dir).is_dir() {
                return Err(Error::NoBase {
                    reason: format!("{} has no {dir}/ folder", base.display()),
                });
            }
        }
        let base_id = match &manifest {
            Some((_, m)) if same_dir(&m.base, &base) && !m.base_id.is_empty() => m.base_id.clone(),
            _ => base_digest(&base)?,
        };
        let mut loras = BTreeMap::new();
        for (&name, &configuration) in needed {
            let missing = |reason: String| Error::MissingLora {
                configuration: configuration.to_owned(),
                lora: name.to_owned(),
                reason,
            };
            let path = match (
                choice.loras.get(name).or_else(|| choice.loras.get("*")),
                &manifest,
            ) {
                (Some(p), _) => p.clone(),
                (None, Some((mpath, m))) => match m.loras.get(name) {
                    Some(l) => l.path.clone(),
                    None => {
                        return Err(missing(format!("{} lists no `{name}`", mpath.display())));
                    }
                },
                (None, None) => {
                    return Err(missing(format!(
                        "{} does not exist",
                        out.join(MANIFEST).display()
                    )));
                }
            };
            if !path.is_file() {
                return Err(missing(format!("{} does not exist", path.display())));
            }
            let sha256 = sha256_file(&path)?;
            let full_unet = !anchor_sd::lora::is_lora_file(&path)?;
            loras.insert(
                name.to_owned(),
                LoraFile {
                    path,
                    sha256,
                    full_unet,
                },
            );
        }
        Ok(ModelSet {
            base,
            base_id,
            loras,
            trained_resolution: manifest.and_then(|(_, m)| m.resolution),
        })
    }

    /// Checks, from the config files alone, that `resolution` maps to latents the UNet can
    /// take (so a bad `--resolution` fails before any part runs).
    pub fn check_resolution(&self, resolution: usize) -> Result<()> {
        let unet = UNetConfig::from_diffusers_json(&self.base.join("unet/config.json"))?;
        let vae = VaeConfig::from_diffusers_json(&self.base.join("vae/config.json"))?;
        resolution_fits(&self.base, resolution, &vae, &unet)
    }

    /// The `model_id` column: the base digest, plus `+lora:<sha256>` when a LoRA is applied
    /// (`+unet:<sha256>` when a fully fine-tuned UNet replaces the base's).
    pub fn model_id(&self, lora: Option<&str>) -> String {
        match lora.and_then(|l| self.loras.get(l)) {
            Some(f) if f.full_unet => format!("{}+unet:{}", self.base_id, f.sha256),
            Some(f) => format!("{}+lora:{}", self.base_id, f.sha256),
            None => self.base_id.clone(),
        }
    }
}

/// How images are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSettings {
    /// Denoising steps.
    pub steps: usize,
    /// Classifier-free guidance scale (1 = no unconditional pass).
    pub guidance: f64,
    /// The sampler.
    pub scheduler: SchedulerKind,
    /// Image width and height in pixels.
    pub resolution: usize,
}

/// A generated image: `height * width * 3` RGB bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGB bytes.
    pub data: Vec<u8>,
}

/// A loaded base model (text encoder, VAE, schedule, tokenizer), with UNets per LoRA loaded
/// on first use and shared by every part.
pub struct Pipeline {
    models: ModelSet,
    tokenizer: ClipTokenizer,
    text: TextConditioner,
    vae: AutoencoderKL,
    schedule: NoiseSchedule,
    unets: Mutex<BTreeMap<Option<String>, Arc<UNet2DConditionModel>>>,
    device: Device,
}

fn read_special_tokens(base: &Path) -> Result<SpecialTokens> {
    let dir = base.join("tokenizer");
    if dir.join("special_tokens_map.json").is_file() {
        Ok(SpecialTokens::from_tokenizer_dir(&dir)?)
    } else {
        // No tokenizer/ folder (the demo base train writes): SD 1.x's CLIP tokenizer.
        Ok(SpecialTokens::sd15())
    }
}

impl Pipeline {
    /// Loads the base model's text encoder and VAE, and the CLIP vocabulary at `vocab`.
    pub fn load(models: &ModelSet, vocab: &Path, device: &Device) -> Result<Pipeline> {
        let base = &models.base;
        let incompatible = |reason: String| Error::Incompatible {
            base: base.clone(),
            reason,
        };
        let special = read_special_tokens(base)?;
        if special.bos != START_ID || special.eos != END_ID {
            return Err(incompatible(format!(
                "tokenizer start/end ids {}/{} differ from CLIP BPE's {START_ID}/{END_ID}",
                special.bos, special.eos
            )));
        }
        let tokenizer = ClipTokenizer::from_file(vocab)?.with_pad_id(special.pad);
        let encoder = ClipTextModel::from_dir(&base.join("text_encoder"), DType::F32, device)?;
        tokenizer_fits(&encoder, &tokenizer, base)?;
        let vae = AutoencoderKL::from_diffusers_dir(&base.join("vae"), DType::F32, device)?;
        let sched_path = base.join("scheduler/scheduler_config.json");
        let schedule = if sched_path.is_file() {
            NoiseSchedule::from_diffusers_json(&sched_path)?
        } else {
            NoiseSchedule::sd(Prediction::Epsilon)
        };
        Ok(Pipeline {
            models: models.clone(),
            tokenizer,
            text: TextConditioner::new(encoder, special)?,
            vae,
            schedule,
            unets: Mutex::new(BTreeMap::new()),
            device: device.clone(),
        })
    }

    /// The UNet with LoRA `lora` applied (`None`: the plain base), loaded once.
    pub fn unet(&self, lora: Option<&str>) -> Result<Arc<UNet2DConditionModel>> {
        let key = lora.map(str::to_owned);
        {
            let cache = self.unets.lock().map_err(|_| poisoned())?;
            if let Some(u) = cache.get(&key) {
                return Ok(Arc::clone(u));
            }
        }
        let unet_dir = self.models.base.join("unet");
        let unet = match lora {
            None => UNet2DConditionModel::from_diffusers_dir(&unet_dir, DType::F32, &self.device)?,
            Some(name) => {
                let file = self.models.loras.get(name).ok_or_else(|| {
                    Error::Config(format!("LoRA `{name}` was not resolved for this run"))
                })?;
                let cfg = UNetConfig::from_diffusers_json(&unet_dir.join("config.json"))?;
                let weights = if file.full_unet {
                    // A fully fine-tuned UNet: same architecture as the base's, new weights.
                    let vb =
                        anchor_sd::weights::load_safetensors(&file.path, DType::F32, &self.device)?;
                    Weights::new(vb)
                } else {
                    let weights = unet_dir.join("diffusion_pytorch_model.safetensors");
                    let base_vb =
                        anchor_sd::weights::load_safetensors(&weights, DType::F32, &self.device)?;
                    let (lora_vb, lora_cfg) =
                        anchor_sd::lora::load_lora("unet", &file.path, DType::F32, &self.device)?;
                    Weights::with_lora(base_vb, lora_vb, lora_cfg)
                };
                UNet2DConditionModel::new(weights, cfg).map_err(|e| match e {
                    anchor_sd::Error::Candle(source) => anchor_sd::Error::Weights {
                        path: file.path.clone(),
                        source,
                    }
                    .into(),
                    other => Error::Model(other),
                })?
            }
        };
        let unet = Arc::new(unet);
        let mut cache = self.unets.lock().map_err(|_| poisoned())?;
        Ok(Arc::clone(cache.entry(key).or_insert(unet)))
    }

    /// The text conditioner (the base's text encoder and special tokens).
    pub fn text(&self) -> &TextConditioner {
        &self.text
    }

    /// The model set this pipeline was loaded from.
    pub fn models(&self) -> &ModelSet {
        &self.models
    }

    /// Tokenizes `text` to 77 positions and weights the tokens that overlap `subjects`
    /// (byte spans of `text`) under `weighting`.
    pub fn prompt(
        &self,
        text: &str,
        subjects: &[SubjectSpan],
        weighting: Weighting,
    ) -> Result<FittedPrompt> {
        let enc = self.tokenizer.tokenize(text);
        Ok(FittedPrompt::from_encoding(
            enc.ids,
            &enc.spans,
            enc.truncated,
            subjects,
            weighting,
        )?)
    }

    /// Checks that `resolution` maps to latents the UNet can take.
    pub fn check_resolution(&self, resolution: usize, unet: &UNet2DConditionModel) -> Result<()> {
        resolution_fits(
            &self.models.base,
            resolution,
            self.vae.config(),
            unet.config(),
        )
    }

    /// Generates one image per (prompt, seed) pair with `unet`. The initial latents of each
    /// image are a pure function of its seed, so the same seed starts every configuration
    /// from the same noise.
    pub fn generate(
        &self,
        unet: &UNet2DConditionModel,
        prompts: &[FittedPrompt],
        seeds: &[u64],
        settings: &SamplerSettings,
    ) -> Result<Vec<RgbImage>> {
        let out = self.denoise_latents(unet, prompts, seeds, settings)?;
        let rgb = latents_to_rgb(&self.vae, &out)?;
        let (b, h, w, _) = rgb.dims4()?;
        let mut images = Vec::with_capacity(b);
        for i in 0..b {
            let data = rgb.get(i)?.flatten_all()?.to_vec1::<u8>()?;
            images.push(RgbImage {
                width: w,
                height: h,
                data,
            });
        }
        Ok(images)
    }

    /// The denoised latents `[B, C, H/f, W/f]` of [`Pipeline::generate`], before the VAE:
    /// every caption of the batch and its unconditional twin go through the UNet in one call
    /// of `2B` rows per step, and each row depends on its own prompt and seed only.
    pub fn denoise_latents(
        &self,
        unet: &UNet2DConditionModel,
        prompts: &[FittedPrompt],
        seeds: &[u64],
        settings: &SamplerSettings,
    ) -> Result<Tensor> {
        if prompts.len() != seeds.len() || prompts.is_empty() {
            return Err(Error::Config(format!(
                "{} prompts for {} seeds",
                prompts.len(),
                seeds.len()
            )));
        }
        self.check_resolution(settings.resolution, unet)?;
        let side = settings.resolution / self.vae.config().downsample_factor();
        let channels = self.vae.config().latent_channels;
        let noise = seeds
            .iter()
            .map(|&s| seeded_normal(s, &[1, channels, side, side], &self.device))
            .collect::<anchor_sd::Result<Vec<_>>>()?;
        let latents = Tensor::cat(&noise, 0)?;
        let cond = self.text.encode(prompts)?;
        let uncond = self.text.empty().repeat((prompts.len(), 1, 1))?;
        let sampler: Box<dyn Sampler> = match settings.scheduler {
            SchedulerKind::Ddim => {
                Box::new(DdimScheduler::new(self.schedule.clone(), settings.steps)?)
            }
            SchedulerKind::Euler => {
                Box::new(EulerDiscreteScheduler::new(&self.schedule, settings.steps)?)
            }
        };
        Ok(denoise(
            unet,
            sampler.as_ref(),
            &latents,
            &cond,
            &uncond,
            settings.guidance,
        )?)
    }
}

fn resolution_fits(
    base: &Path,
    resolution: usize,
    vae: &VaeConfig,
    unet: &UNetConfig,
) -> Result<()> {
    let f = vae.downsample_factor();
    let levels = unet.block_out_channels.len();
    let need = f << levels.saturating_sub(1);
    if resolution == 0 || !resolution.is_multiple_of(need) {
        return Err(Error::Incompatible {
            base: base.to_path_buf(),
            reason: format!(
                "resolution {resolution} must be a positive multiple of {need} (VAE factor {f}, {levels} UNet levels)"
            ),
        });
    }
    Ok(())
}

/// Every id the tokenizer can emit must index the encoder's embedding table.
fn tokenizer_fits(encoder: &ClipTextModel, tokenizer: &ClipTokenizer, base: &Path) -> Result<()> {
    let n = encoder.config().vocab_size;
    let need = tokenizer.vocab_size().max(END_ID as usize + 1);
    if n < need {
        return Err(Error::Incompatible {
            base: base.to_path_buf(),
            reason: format!(
                "text_encoder has a {n}-token vocabulary, but the CLIP BPE tokenizer needs {need}"
            ),
        });
    }
    Ok(())
}

fn poisoned() -> Error {
    Error::Config("the model cache lock was poisoned by a failed part".into())
}

/// The LoRA names the configurations need, each with the first configuration needing it.
pub fn needed_loras(
    configurations: &[crate::Configuration],
) -> BTreeMap<&'static str, &'static str> {
    let mut out = BTreeMap::new();
    for c in configurations {
        if let Some(l) = c.lora() {
            out.entry(l).or_insert(c.as_str());
        }
    }
    out
}
