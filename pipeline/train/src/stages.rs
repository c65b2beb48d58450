//! The training stages: the demo base (a small VAE, then a small UNet in its latent space
//! with a frozen random-init CLIP text encoder) and the paper's LoRA configurations on top
//! of any base folder. Every stage checkpoints, records its log in a `done.json` keyed by
//! its settings, and is skipped when that record matches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anchor_clip_tokenizer::ClipTokenizer;
use anchor_sd::{
    AutoencoderKL, ClipActivation, ClipTextConfig, ClipTextModel, FittedPrompt, LoraConfig,
    NoiseSchedule, Prediction, SpecialTokens, SubjectSpan, TextConditioner, UNet2DConditionModel,
    UNetConfig, VaeConfig, Weighting, Weights,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::data::{Example, preprocess};
use crate::error::{Error, IoAt, Result};
use crate::objective::{DiffusionObjective, ImageSet, LatentSet, VaeObjective, reconstruction_mse};
use crate::optim::{AdamWConfig, Params};
use crate::precision::Precision;
use crate::trainer::{Checkpoints, LogRow, LoopConfig, train};

/// The LoRA a configuration of the paper trains (the others reuse these at sampling time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainedLora {
    /// Domain fine-tuning on plain captions.
    Lora,
    /// The LoRA trained with subject-weighted embeddings (SAFE).
    Safe,
}

impl TrainedLora {
    /// Its name in tables and paths.
    pub fn name(self) -> &'static str {
        match self {
            TrainedLora::Lora => "lora",
            TrainedLora::Safe => "safe",
        }
    }

    /// Parses `lora` or `safe`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "lora" => Ok(TrainedLora::Lora),
            "safe" => Ok(TrainedLora::Safe),
            other => Err(Error::Config {
                what: "configurations",
                reason: format!(
                    "{other:?} does not train (lora and safe do; weighting, lora+weighting and prefix reuse them at sampling time)"
                ),
            }),
        }
    }
}

/// How `safe` weights subject tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectWeighting {
    /// Every subject gets the same weight (compel `++` = 1.21).
    Fixed(f32),
    /// The weights of the `subjects` table.
    Llm,
}

/// Settings of the demo base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSettings {
    /// VAE optimiser steps.
    pub vae_steps: u64,
    /// VAE learning rate.
    pub vae_lr: f64,
    /// Weight of the VAE's KL term.
    pub vae_kl_weight: f64,
    /// UNet optimiser steps.
    pub unet_steps: u64,
    /// UNet learning rate.
    pub unet_lr: f64,
    /// Samples per micro-batch of both.
    pub batch_size: usize,
}

/// Everything that shapes the training outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// LoRA configurations to train.
    pub configurations: Vec<TrainedLora>,
    /// A diffusers folder; `None` trains the demo base.
    pub base: Option<PathBuf>,
    /// Image side in pixels.
    pub resolution: usize,
    /// LoRA rank and alpha.
    pub lora: LoraConfig,
    /// Optimiser steps per LoRA.
    pub steps: u64,
    /// Samples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per step.
    pub grad_accum: usize,
    /// Peak learning rate of the LoRAs.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Grad-norm clip.
    pub max_grad_norm: f64,
    /// Min-SNR-gamma (none = plain MSE).
    pub min_snr_gamma: Option<f32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Subject weighting of `safe`.
    pub weighting: SubjectWeighting,
    /// The demo base's settings (ignored with `base`).
    pub demo: DemoSettings,
    /// open_clip's `bpe_simple_vocab_16e6.txt.gz`.
    pub vocab: PathBuf,
    /// Compute dtype of the frozen UNet while training the LoRAs (the demo base's VAE and
    /// UNet always train in f32). Omitted from keys when f32, so older runs keep theirs.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Train every UNet weight instead of LoRA adapters (f32 only); the configuration's
    /// output is then a whole diffusers UNet. Omitted from keys when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_finetune: bool,
}

/// A finished stage: its key and log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    /// Digest of the stage's settings and inputs.
    pub key: String,
    /// The training curve.
    pub log: Vec<LogRow>,
    /// Stage-specific facts (reconstruction losses, file hashes, ...).
    pub facts: serde_json::Value,
    /// Wall-clock seconds spent training in the call that finished it (0 when resumed
    /// from a finished record); never part of a table.
    #[serde(default)]
    pub seconds: f64,
    /// Steps computed in that call.
    #[serde(default)]
    pub steps_run: u64,
}

/// Paths under `<out>/train`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<out>/train`.
    pub root: PathBuf,
}

impl Layout {
    /// The demo base (or nothing, with `--base`).
    pub fn base_dir(&self) -> PathBuf {
        self.root.join("models").join("base")
    }
    /// The LoRA file of `c`.
    pub fn lora_file(&self, c: TrainedLora) -> PathBuf {
        self.root
            .join("models")
            .join("lora")
            .join(c.name())
            .join("pytorch_lora_weights.safetensors")
    }
    /// The fully fine-tuned UNet of `c`, a diffusers `unet` folder's weights file.
    pub fn full_unet_file(&self, c: TrainedLora) -> PathBuf {
        self.root
            .join("models")
            .join("full")
            .join(c.name())
            .join("unet")
            .join("diffusion_pytorch_model.safetensors")
    }
    /// Where configuration `c`'s trained weights go.
    pub fn weights_file(&self, c: TrainedLora, full_finetune: bool) -> PathBuf {
        if full_finetune {
            self.full_unet_file(c)
        } else {
            self.lora_file(c)
        }
    }
    /// `models/manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("models").join("manifest.json")
    }
    /// Work folder of a stage.
    pub fn work(&self, stage: &str) -> PathBuf {
        self.root.join("work").join(stage)
    }
    /// Cached latents and embeddings.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn read_record(dir: &Path, key: &str) -> Option<StageRecord> {
    let bytes = std::fs::read(dir.join("done.json")).ok()?;
    let mut r: StageRecord = serde_json::from_slice(&bytes).ok()?;
    // Nothing was trained by this call.
    r.seconds = 0.0;
    r.steps_run = 0;
    (r.key == key).then_some(r)
}

fn write_record(dir: &Path, r: &StageRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Checkpoint {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    crate::st::write_bytes(&dir.join("done.json"), &json)
}

/// The demo VAE: three levels (16/32/64 channels, two 2x downsamplings), 4 latent channels.
pub fn demo_vae_config() -> VaeConfig {
    VaeConfig {
        in_channels: 3,
        out_channels: 3,
        latent_channels: 4,
        block_out_channels: vec![16, 32, 64],
        layers_per_block: 1,
        norm_num_groups: 8,
        scaling_factor: 1.0,
    }
}

/// The demo UNet: SD-shaped, levels 32/64 with cross-attention (the bench's model).
pub fn demo_unet_config() -> UNetConfig {
    UNetConfig::tiny()
}

/// The demo text encoder: CLIP's full 49408-token vocabulary, width 32, two layers.
/// Random init, frozen: with a few hundred captions there is nothing to learn a language
/// from, and a fixed encoder keeps the embeddings cacheable exactly as with SD's.
pub fn demo_clip_config() -> ClipTextConfig {
    ClipTextConfig {
        vocab_size: 49408,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 77,
        hidden_act: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
    }
}

/// Shared state of a training run: the examples, the device, locks for stages that
/// several parts need.
pub struct Trainer {
    /// The settings.
    pub settings: TrainSettings,
    /// Where things go.
    pub layout: Layout,
    /// Digest of the input tables (their ledger fingerprints).
    pub inputs_key: String,
    /// The device.
    pub device: Device,
    vae_lock: Mutex<()>,
    base_lock: Mutex<()>,
    manifest_lock: Mutex<()>,
}

/// Images decoded at the training resolution, plus the examples that decoded.
pub struct Prepared {
    /// Examples kept (decodable images), in id order.
    pub examples: Vec<Example>,
    /// Their pixels and mirrors.
    pub images: ImageSet,
    /// Examples dropped because their image does not decode.
    pub bad_images: u64,
}

impl Trainer {
    /// A trainer writing under `layout`.
    pub fn new(
        settings: TrainSettings,
        layout: Layout,
        inputs_key: String,
        device: Device,
    ) -> Self {
        Self {
            settings,
            layout,
            inputs_key,
            device,
            vae_lock: Mutex::new(()),
            base_lock: Mutex::new(()),
            manifest_lock: Mutex::new(()),
        }
    }

    /// Decodes and crops every example's image (both orientations).
    pub fn prepare(&self, examples: Vec<Example>) -> Result<Prepared> {
        let res = self.settings.resolution;
        let mut kept = Vec::with_capacity(examples.len());
        let mut plain = Vec::new();
        let mut flipped = Vec::new();
        let mut bad = 0;
        for ex in examples {
            match preprocess(&ex.id, &ex.image, res) {
                Ok((p, f)) => {
                    plain.extend(p);
                    flipped.extend(f);
                    kept.push(ex);
                }
                Err(e) => {
                    tracing::warn!("skipping: {e}");
                    bad += 1;
                }
            }
        }
        let n = kept.len();
        if n == 0 {
            return Err(Error::Config {
                what: "data",
                reason: "no train-split pair with a decodable image".into(),
            });
        }
        plain.extend(flipped);
        let pixels =
            Tensor::from_vec(plain, (2 * n, 3, res, res), &Device::Cpu)?.to_device(&self.device)?;
        Ok(Prepared {
            examples: kept,
            images: ImageSet { pixels, n },
            bad_images: bad,
        })
    }

    fn loop_config(
        &self,
        steps: u64,
        lr: f64,
        batch: usize,
        accum: usize,
        stream: u64,
    ) -> LoopConfig {
        let s = &self.settings;
        LoopConfig {
            steps,
            batch_size: batch,
            grad_accum: accum,
            lr,
            warmup: s.warmup.min(steps / 2),
            max_grad_norm: s.max_grad_norm,
            adamw: AdamWConfig::default(),
            seed: s.seed.wrapping_add(stream),
            checkpoint_every: s.checkpoint_every,
            loss_scaling: false,
        }
    }

    fn vae_key(&self) -> String {
        let s = &self.settings;
        digest(&[
            "vae/1",
            &self.inputs_key,
            &s.resolution.to_string(),
            &s.seed.to_string(),
            &s.demo.vae_steps.to_string(),
            &s.demo.vae_lr.to_string(),
            &s.demo.vae_kl_weight.to_string(),
            &s.demo.batch_size.to_string(),
            &format!("{:?}", demo_vae_config()),
        ])
    }

    fn base_key(&self) -> String {
        digest(&[
            "unet/1",
            &self.vae_key(),
            &self.settings.demo.unet_steps.to_string(),
            &self.settings.demo.unet_lr.to_string(),
            &format!("{:?}", self.settings.min_snr_gamma),
            &format!("{:?}", demo_unet_config()),
            &format!("{:?}", demo_clip_config()),
        ])
    }

    /// Trains the demo VAE unless its record is current. Returns its record.
    pub fn ensure_vae(
        &self,
        data: &Prepared,
        on_step: &mut dyn FnMut(&str, &LogRow),
    ) -> Result<StageRecord> {
        let _guard = self.vae_lock.lock().map_err(|_| Error::Config {
            what: "vae",
            reason: "lock poisoned".into(),
        })?;
        let work = self.layout.work("vae");
        let key = self.vae_key();
        if let Some(r) = read_record(&work, &key)
            && work.join("model").join("config.json").is_file()
        {
            return Ok(r);
        }
        let s = &self.settings;
        let mut cfg = demo_vae_config();
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &self.device);
        let vae = AutoencoderKL::new(vb, cfg.clone())?;
        let params = Params::from_varmap(&vm, |_| true)?;
        params.reinit(s.seed ^ 0x5AE)?;
        // Start the posterior narrow (std e^-2): with SD's usual init (std about 1) the
        // decoder sees mostly noise for the first few hundred steps, longer than the whole
        // demo budget. The KL term still pulls the variance where it belongs.
        if let Some(i) = params.names().iter().position(|n| n == "quant_conv.bias") {
            let var = &params.vars()[i];
            let l = cfg.latent_channels;
            let mut b: Vec<f32> = var.as_tensor().to_dtype(DType::F32)?.to_vec1()?;
            for x in b.iter_mut().skip(l).take(l) {
                *x = -4.0;
            }
            var.set(&Tensor::from_vec(b, 2 * l, &self.device)?)?;
        }
        let eval_n = data.images.n.min(8);
        let eval = data.images.pixels.narrow(0, 0, eval_n)?;
        let before = reconstruction_mse(&vae, &eval)?;
        let lc = self.loop_config(s.demo.vae_steps, s.demo.vae_lr, s.demo.batch_size, 1, 0x5AE);
        let ckpt = Checkpoints {
            dir: work.join("checkpoints"),
            run_key: key.clone(),
        };
        let objective = VaeObjective {
            vae: &vae,
            images: &data.images,
            kl_weight: s.demo.vae_kl_weight,
        };
        let report = train(&lc, &params, &objective, &ckpt, None, |r| on_step("vae", r))?;
        let after = reconstruction_mse(&vae, &eval)?;
        // SD chose its scaling factor as 1 / std of the latents; do the same on our data.
        let mut sum = 0f64;
        let mut sq = 0f64;
        let mut count = 0f64;
        for start in (0..data.images.n).step_by(16) {
            let len = 16.min(data.images.n - start);
            let m = vae.encode(&data.images.pixels.narrow(0, start, len)?)?.mean;
            let v: Vec<f32> = m.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            for x in v {
                sum += x as f64;
                sq += (x as f64) * (x as f64);
                count += 1.0;
            }
        }
        let mean = sum / count;
        let std = (sq / count - mean * mean).max(1e-12).sqrt();
        cfg.scaling_factor = 1.0 / std;
        let sample = s.resolution;
        crate::folder::write_vae(&work.join("model"), &cfg, sample, &params.tensors())?;
        let record = StageRecord {
            key,
            log: report.log,
            facts: serde_json::json!({
                "reconstruction_mse_init": before,
                "reconstruction_mse_trained": after,
                "eval_images": eval_n,
                "scaling_factor": cfg.scaling_factor,
            }),
            seconds: report.seconds,
            steps_run: report.steps_run,
        };
        write_record(&work, &record)?;
        ckpt.clear()?;
        Ok(record)
    }

    /// Trains the demo UNet (after the VAE) and writes the base folder, unless current.
    pub fn ensure_base(
        &self,
        data: &Prepared,
        on_step: &mut dyn FnMut(&str, &LogRow),
    ) -> Result<StageRecord> {
        let _guard = self.base_lock.lock().map_err(|_| Error::Config {
            what: "base",
            reason: "lock poisoned".into(),
        })?;
        let work = self.layout.work("unet");
        let key = self.base_key();
        let base_dir = self.layout.base_dir();
        if let Some(r) = read_record(&work, &key)
            && base_dir.join("anchor_base.json").is_file()
        {
            return Ok(r);
        }
        let vae_record = self.ensure_vae(data, on_step)?;
        let s = &self.settings;
        let vae_dir = self.layout.work("vae").join("model");
        let vae = AutoencoderKL::from_diffusers_dir(&vae_dir, DType::F32, &self.device)?;
        // Frozen random text encoder, built from plain tensors.
        let clip_cfg = demo_clip_config();
        let clip_vm = VarMap::new();
        let _ = ClipTextModel::new(
            VarBuilder::from_varmap(&clip_vm, DType::F32, &self.device).pp("text_model"),
            clip_cfg.clone(),
        )?;
        let clip_params = Params::from_varmap(&clip_vm, |_| true)?;
        clip_params.reinit(s.seed ^ 0xC11F)?;
        let clip_tensors = clip_params.tensors();
        let encoder = ClipTextModel::new(
            VarBuilder::from_tensors(
                clip_tensors.iter().cloned().collect(),
                DType::F32,
                &self.device,
            ),
            clip_cfg.clone(),
        )?;
        let text = TextConditioner::new(encoder, SpecialTokens::sd15())?;
        let latents = self.latents(&vae, data, "demo")?;
        let embeddings = self.embeddings(&text, &data.examples, None, "demo")?;
        let unet_cfg = demo_unet_config();
        let vm = VarMap::new();
        let unet = UNet2DConditionModel::new(
            Weights::new(VarBuilder::from_varmap(&vm, DType::F32, &self.device)),
            unet_cfg.clone(),
        )?;
        let params = Params::from_varmap(&vm, |_| true)?;
        params.reinit(s.seed ^ 0x0E7)?;
        let schedule = NoiseSchedule::sd(Prediction::Epsilon);
        let lc = self.loop_config(
            s.demo.unet_steps,
            s.demo.unet_lr,
            s.demo.batch_size,
            1,
            0x0E7,
        );
        let ckpt = Checkpoints {
            dir: work.join("checkpoints"),
            run_key: key.clone(),
        };
        let objective = DiffusionObjective {
            unet: &unet,
            schedule: &schedule,
            latents: &latents,
            embeddings: &embeddings,
            min_snr_gamma: s.min_snr_gamma,
            cond_dropout: Some((text.empty(), 0.1)),
        };
        let report = train(&lc, &params, &objective, &ckpt, None, |r| {
            on_step("unet", r)
        })?;

        // Assemble the folder next to its final place, then swap it in.
        let tmp = self.layout.root.join("models").join(".base.tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        let latent_side = s.resolution / demo_vae_config().downsample_factor();
        crate::folder::write_unet(&tmp.join("unet"), &unet_cfg, latent_side, &params.tensors())?;
        let vae_cfg = VaeConfig::from_diffusers_json(&vae_dir.join("config.json"))?;
        let vae_w = crate::st::read(
            &vae_dir.join("diffusion_pytorch_model.safetensors"),
            &Device::Cpu,
        )?;
        let vae_w: Vec<(String, Tensor)> = vae_w.into_iter().collect();
        crate::folder::write_vae(&tmp.join("vae"), &vae_cfg, s.resolution, &vae_w)?;
        crate::folder::write_text_encoder(&tmp.join("text_encoder"), &clip_cfg, &clip_tensors)?;
        crate::folder::write_tokenizer(&tmp.join("tokenizer"), &s.vocab)?;
        crate::folder::write_pipeline_files(&tmp)?;
        let facts = serde_json::json!({
            "kind": "anchor demo base (not Stable Diffusion)",
            "resolution": s.resolution,
            "vae": vae_record.facts,
            "vae_steps": s.demo.vae_steps,
            "unet_steps": s.demo.unet_steps,
            "unet_parameters": params.numel(),
            "text_encoder": "random init (seeded), frozen",
            "key": key,
        });
        let json = serde_json::to_vec_pretty(&facts).map_err(|e| Error::Checkpoint {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        crate::st::write_bytes(&tmp.join("anchor_base.json"), &json)?;
        if base_dir.exists() {
            std::fs::remove_dir_all(&base_dir).at(&base_dir)?;
        }
        std::fs::rename(&tmp, &base_dir).at(&base_dir)?;
        let record = StageRecord {
            key,
            log: report.log,
            facts,
            seconds: report.seconds,
            steps_run: report.steps_run,
        };
        write_record(&work, &record)?;
        ckpt.clear()?;
        Ok(record)
    }

    /// The base folder used: `--base`, or the demo base.
    pub fn base_path(&self) -> PathBuf {
        self.settings
            .base
            .clone()
            .unwrap_or_else(|| self.layout.base_dir())
    }

    /// Cached latent distributions of every example (plain and mirrored), encoded once per
    /// (base, examples, resolution) and stored as shards of 64 examples.
    pub fn latents(
        &self,
        vae: &AutoencoderKL,
        data: &Prepared,
        base_id: &str,
    ) -> Result<LatentSet> {
        let ids: Vec<&str> = data.examples.iter().map(|e| e.id.as_str()).collect();
        let key = digest(&[
            "latents/1",
            base_id,
            &self.settings.resolution.to_string(),
            &ids.join("\n"),
            &format!("{:?}", vae.config()),
        ]);
        let n = data.images.n;
        let dir = self.layout.cache().join(format!("latents-{}", &key[..16]));
        let shard = 64;
        let mut means = Vec::new();
        let mut logvars = Vec::new();
        // Plain rows 0..n, mirrored rows n..2n: shards over the 2n rows.
        for (k, start) in (0..2 * n).step_by(shard).enumerate() {
            let len = shard.min(2 * n - start);
            let path = dir.join(format!("shard-{k:05}.safetensors"));
            let cached = crate::st::read(&path, &self.device).ok().and_then(|m| {
                let (a, b) = (m.get("mean")?.clone(), m.get("logvar")?.clone());
                (a.dim(0).ok()? == len).then_some((a, b))
            });
            let (m, l) = match cached {
                Some(pair) => pair,
                None => {
                    let mut ms = Vec::new();
                    let mut ls = Vec::new();
                    for s in (start..start + len).step_by(16) {
                        let l = 16.min(start + len - s);
                        let d = vae.encode(&data.images.pixels.narrow(0, s, l)?)?;
                        ms.push(d.mean);
                        ls.push(d.logvar);
                    }
                    let (m, l) = (Tensor::cat(&ms, 0)?, Tensor::cat(&ls, 0)?);
                    crate::st::write(
                        &path,
                        &[("logvar".into(), l.clone()), ("mean".into(), m.clone())],
                        &BTreeMap::new(),
                    )?;
                    (m, l)
                }
            };
            means.push(m);
            logvars.push(l);
        }
        Ok(LatentSet {
            mean: Tensor::cat(&means, 0)?,
            logvar: Tensor::cat(&logvars, 0)?,
            n,
            scaling_factor: vae.config().scaling_factor,
        })
    }

    /// Fitted (tokenised, weighted) prompts of the examples.
    pub fn prompts(
        &self,
        examples: &[Example],
        special: SpecialTokens,
        weighting: Option<SubjectWeighting>,
    ) -> Result<(Vec<FittedPrompt>, u64)> {
        let tok = ClipTokenizer::from_file(&self.settings.vocab)?.with_pad_id(special.pad);
        let mut with_subjects = 0;
        let prompts = examples
            .iter()
            .map(|ex| {
                let enc = tok.tokenize(&ex.caption);
                let (subjects, w) = match weighting {
                    None => (Vec::new(), Weighting::default()),
                    Some(sw) => {
                        if !ex.subjects.is_empty() {
                            with_subjects += 1;
                        }
                        let spans = ex
                            .subjects
                            .iter()
                            .map(|s| SubjectSpan {
                                chars: s.start..s.end,
                                weight: s.weight,
                            })
                            .collect();
                        let w = match sw {
                            SubjectWeighting::Fixed(x) => Weighting::Fixed(x),
                            SubjectWeighting::Llm => Weighting::Llm,
                        };
                        (spans, w)
                    }
                };
                let mut ids = enc.ids;
                // The tokenizer starts sequences with 49406 / ends with 49407; a base whose
                // tokenizer uses other ids (never the case for SD) gets them swapped in.
                if let Some(first) = ids.first_mut() {
                    *first = special.bos;
                }
                if enc.len >= 1 && enc.len <= ids.len() {
                    ids[enc.len - 1] = special.eos;
                }
                FittedPrompt::from_encoding(ids, &enc.spans, enc.truncated, &subjects, w)
                    .map_err(Error::from)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((prompts, with_subjects))
    }

    /// Cached text embeddings `[N, L, D]` of the examples, weighted for `safe`.
    pub fn embeddings(
        &self,
        text: &TextConditioner,
        examples: &[Example],
        weighting: Option<SubjectWeighting>,
        base_id: &str,
    ) -> Result<Tensor> {
        let (prompts, _) = self.prompts(examples, text.special_tokens(), weighting)?;
        let mut h = sha2::Sha256::new();
        for p in &prompts {
            for id in &p.ids {
                h.update(id.to_le_bytes());
            }
            for w in &p.weights {
                h.update(w.to_le_bytes());
            }
        }
        let key = digest(&["embeddings/1", base_id, &hex::encode(h.finalize())]);
        let dir = self
            .layout
            .cache()
            .join(format!("embeddings-{}", &key[..16]));
        let shard = 64;
        let mut parts = Vec::new();
        for (k, start) in (0..prompts.len()).step_by(shard).enumerate() {
            let len = shard.min(prompts.len() - start);
            let path = dir.join(format!("shard-{k:05}.safetensors"));
            let cached = crate::st::read(&path, &self.device)
                .ok()
                .and_then(|m| m.get("embeddings").cloned())
                .filter(|t| t.dim(0).ok() == Some(len));
            let e = match cached {
                Some(t) => t,
                None => {
                    let mut chunks = Vec::new();
                    for s in (start..start + len).step_by(16) {
                        let l = 16.min(start + len - s);
                        chunks.push(text.encode(&prompts[s..s + l])?);
                    }
                    let e = Tensor::cat(&chunks, 0)?;
                    crate::st::write(&path, &[("embeddings".into(), e.clone())], &BTreeMap::new())?;
                    e
                }
            };
            parts.push(e);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Trains configuration `c` on the base (demo base trained first when needed),
    /// saves the LoRA file and updates the manifest.
    pub fn finetune(
        &self,
        c: TrainedLora,
        data: &Prepared,
        on_step: &mut dyn FnMut(&str, &LogRow),
        stop_after: Option<u64>,
    ) -> Result<StageRecord> {
        let s = &self.settings;
        if s.base.is_none() {
            self.ensure_base(data, on_step)?;
        }
        let base = self.base_path();
        let base_id = crate::folder::base_id(&base)?;
        let weighting = match c {
            TrainedLora::Lora => None,
            TrainedLora::Safe => Some(s.weighting),
        };
        // Only what shapes this LoRA: not the list of configurations, not the demo settings
        // (the base id covers them), not the weighting for `lora`.
        let mut own = s.clone();
        own.configurations.clear();
        own.base = None;
        own.demo.batch_size = 0;
        own.demo.vae_steps = 0;
        own.demo.unet_steps = 0;
        if c == TrainedLora::Lora {
            own.weighting = SubjectWeighting::Fixed(0.0);
        }
        let key = digest(&[
            "lora/1",
            c.name(),
            &base_id,
            &self.inputs_key,
            &to_json(&own),
        ]);
        let work = self.layout.work(c.name());
        let lora_path = self.layout.weights_file(c, s.full_finetune);
        if let Some(r) = read_record(&work, &key)
            && lora_path.is_file()
        {
            self.update_manifest(&base, &base_id, c, &lora_path)?;
            return Ok(r);
        }
        // The VAE and the text encoder only fill the caches, once, so they run in f32 whatever
        // the precision: the caches are then shared by every precision. The frozen UNet runs in
        // the compute dtype (weights converted on load, fp16 files included); the adapters keep
        // f32 master weights.
        s.precision.check_device(&self.device)?;
        if s.full_finetune && !s.precision.is_f32() {
            return Err(Error::Config {
                what: "precision",
                reason: format!(
                    "full fine-tuning trains every weight in f32; {} applies to LoRA training \
                     (its frozen base)",
                    s.precision.name()
                ),
            });
        }
        let dtype = DType::F32;
        let compute = s.precision.dtype();
        let unet_dir = base.join("unet");
        let unet_cfg = UNetConfig::from_diffusers_json(&unet_dir.join("config.json"))?;
        let unet_file = unet_dir.join("diffusion_pytorch_model.safetensors");
        let vae = AutoencoderKL::from_diffusers_dir(&base.join("vae"), dtype, &self.device)?;
        let encoder = ClipTextModel::from_dir(&base.join("text_encoder"), dtype, &self.device)?;
        let special = SpecialTokens::from_tokenizer_dir(&base.join("tokenizer"))
            .unwrap_or_else(|_| SpecialTokens::sd15());
        let text = TextConditioner::new(encoder, special)?;
        let schedule = NoiseSchedule::from_diffusers_json(
            &base.join("scheduler").join("scheduler_config.json"),
        )
        .unwrap_or_else(|_| NoiseSchedule::sd(Prediction::Epsilon));
        let latents = self.latents(&vae, data, &base_id)?;
        let embeddings = self.embeddings(&text, &data.examples, weighting, &base_id)?;
        let stream = match c {
            TrainedLora::Lora => 0x10,
            TrainedLora::Safe => 0x5AFE,
        };
        let trainable = VarMap::new();
        let (unet, params) = if s.full_finetune {
            // Every weight is a variable, starting from the base's values.
            let unet = UNet2DConditionModel::new(
                Weights::new(VarBuilder::from_varmap(&trainable, dtype, &self.device)),
                unet_cfg.clone(),
            )?;
            let params = Params::from_varmap(&trainable, |_| true)?;
            params
                .load(&crate::st::read(&unet_file, &self.device)?)
                .map_err(|e| Error::Input {
                    what: unet_file.display().to_string(),
                    reason: e.to_string(),
                })?;
            (unet, params)
        } else {
            let base_vb = anchor_sd::weights::load_safetensors(&unet_file, compute, &self.device)?;
            let unet = UNet2DConditionModel::new(
                Weights::with_lora(
                    base_vb,
                    VarBuilder::from_varmap(&trainable, dtype, &self.device).pp("unet"),
                    s.lora,
                ),
                unet_cfg.clone(),
            )?;
            let params = Params::from_varmap(&trainable, |_| true)?;
            params.reinit(s.seed ^ stream)?;
            (unet, params)
        };
        let mut lc = self.loop_config(s.steps, s.lr, s.batch_size, s.grad_accum, stream);
        lc.loss_scaling = s.precision.scales_loss();
        let ckpt = Checkpoints {
            dir: work.join("checkpoints"),
            run_key: key.clone(),
        };
        let objective = DiffusionObjective {
            unet: &unet,
            schedule: &schedule,
            latents: &latents,
            embeddings: &embeddings,
            min_snr_gamma: s.min_snr_gamma,
            cond_dropout: None,
        };
        let name = c.name();
        let report = train(&lc, &params, &objective, &ckpt, stop_after, |r| {
            on_step(name, r)
        })?;
        if report.log.len() as u64 != s.steps {
            // Stopped early on request (tests): the checkpoint stays for the resume.
            return Ok(StageRecord {
                key,
                log: report.log,
                facts: serde_json::Value::Null,
                seconds: report.seconds,
                steps_run: report.steps_run,
            });
        }
        if s.full_finetune {
            let dir = lora_path.parent().ok_or_else(|| Error::Config {
                what: "layout",
                reason: "the UNet file has no folder".into(),
            })?;
            // The base's own config (with every key diffusers reads) next to the new weights:
            // `UNet2DConditionModel.from_pretrained(dir)` loads the folder.
            std::fs::create_dir_all(dir).at(dir)?;
            let config = dir.join("config.json");
            std::fs::copy(unet_dir.join("config.json"), &config).at(&config)?;
            let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
            crate::st::write(&lora_path, &params.tensors(), &meta)?;
        } else {
            save_lora_file(&lora_path, &params, s.lora)?;
        }
        let sha = crate::folder::sha256_file(&lora_path)?;
        let record = StageRecord {
            key,
            log: report.log,
            facts: serde_json::json!({
                "base": base.display().to_string(),
                "base_id": base_id,
                "kind": if s.full_finetune { "full" } else { "lora" },
                "trained_parameters": params.numel(),
                "trained_variables": params.len(),
                "precision": s.precision.name(),
                "skipped_steps": report.skipped_steps,
                "sha256": sha,
            }),
            seconds: report.seconds,
            steps_run: report.steps_run,
        };
        write_record(&work, &record)?;
        ckpt.clear()?;
        self.update_manifest(&base, &base_id, c, &lora_path)?;
        Ok(record)
    }

    fn update_manifest(
        &self,
        base: &Path,
        base_id: &str,
        c: TrainedLora,
        lora: &Path,
    ) -> Result<()> {
        let _guard = self.manifest_lock.lock().map_err(|_| Error::Config {
            what: "manifest",
            reason: "lock poisoned".into(),
        })?;
        let path = self.layout.manifest();
        let mut manifest: serde_json::Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        let same_base = manifest.get("base_id").and_then(|v| v.as_str()) == Some(base_id)
            && manifest.get("resolution").and_then(|v| v.as_u64())
                == Some(self.settings.resolution as u64);
        if !same_base {
            manifest = serde_json::json!({ "loras": {} });
        }
        manifest["base"] = serde_json::json!(base.display().to_string());
        manifest["base_id"] = serde_json::json!(base_id);
        manifest["resolution"] = serde_json::json!(self.settings.resolution);
        if !manifest["loras"].is_object() {
            manifest["loras"] = serde_json::json!({});
        }
        manifest["loras"][c.name()] = if self.settings.full_finetune {
            // A whole UNet: the sampler swaps it in for the base's (no adapter to apply).
            serde_json::json!({
                "path": lora.display().to_string(),
                "sha256": crate::folder::sha256_file(lora)?,
                "kind": "full",
            })
        } else {
            serde_json::json!({
                "path": lora.display().to_string(),
                "sha256": crate::folder::sha256_file(lora)?,
                "kind": "lora",
                "rank": self.settings.lora.rank,
                "alpha": self.settings.lora.alpha,
            })
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        crate::st::write_bytes(&path, &json)
    }
}

/// Writes the LoRA variables in diffusers' file format (`unet.<module>.lora_A.weight`,
/// the PEFT config under `lora_adapter_metadata`), byte-deterministically.
pub fn save_lora_file(path: &Path, params: &Params, cfg: LoraConfig) -> Result<()> {
    let adapter = format!(
        "{{\"unet.lora_alpha\": {}, \"unet.r\": {}, \"unet.target_modules\": [\"to_k\", \"to_out.0\", \"to_q\", \"to_v\"]}}",
        serde_json::json!(cfg.alpha),
        cfg.rank
    );
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (anchor_sd::lora::ADAPTER_METADATA_KEY.to_string(), adapter),
    ]);
    crate::st::write(path, &params.tensors(), &meta)
}
