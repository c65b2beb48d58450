//! The training stages: the demo base (a small VAE, then a small UNet in its latent space
//! with a frozen random-init CLIP text encoder) and the paper's LoRA configurations on top
//! of any base folder. Every stage checkpoints, records its log in a `done.json` keyed by
//! its settings, and is skipped when that record matches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anchor_clip_tokenizer::ClipTokenizer;
use anchor_sd::{
    AutoencoderKL, ClipTextModel, FittedPrompt, LoraConfig, NoiseSchedule, Prediction,
    SpecialTokens, SubjectSpan, TextConditioner, UNet2DConditionModel, UNetConfig, VaeConfig,
    Weighting, Weights,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sha2::Digest;

use crate::data::{Example, preprocess};
use crate::demo::{demo_clip_config, demo_unet_config, demo_vae_config};
use crate::error::{Error, IoAt, Result};
use crate::layout::{Layout, StageRecord, digest, read_record, to_json, write_record};
use crate::objective::{DiffusionObjective, ImageSet, LatentSet, VaeObjective, reconstruction_mse};
use crate::optim::{AdamWConfig, Params};
use crate::settings::{SubjectWeighting, TrainSettings, TrainedLora, ValidationSettings};
use crate::trainer::{
    Checkpoints, GradientSync, LogRow, LoopConfig, Schedule, SingleProcess, train_data_parallel,
};
use crate::validation::Validator;

/// Shared state of a training run: the examples, the device, locks for stages that
/// several parts need.
///
/// In a data-parallel run every rank holds a `StageRunner` on the same settings and output
/// folder and calls the same stages in the same order. Rank 0 decides whether a stage is
/// already done and tells the others; only rank 0 writes (checkpoints, caches, models,
/// records), and the others wait for its writes before they read them.
pub struct StageRunner {
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
    sync: Arc<dyn GradientSync + Send>,
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

impl StageRunner {
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
            sync: Arc::new(SingleProcess),
        }
    }

    /// The trainer as one rank of a data-parallel run sharing gradients through `sync`.
    pub fn with_sync(mut self, sync: Arc<dyn GradientSync + Send>) -> Self {
        self.sync = sync;
        self
    }

    /// Whether this process writes: rank 0 of a data-parallel run, or the only process.
    pub fn writes(&self) -> bool {
        self.sync.rank() == 0
    }

    /// Part of every stage key in a data-parallel run: its global batch is
    /// `world_size` times the configured one.
    fn world_tag(&self) -> Option<String> {
        let world = self.sync.world_size();
        (world > 1).then(|| format!("world_size={world}"))
    }

    /// Rank 0's finding of whether the stage in `work` is done, the same on every rank.
    /// `local` is this rank's own finding (the stage's record, when current).
    fn agreed_record(
        &self,
        work: &Path,
        local: Option<StageRecord>,
    ) -> Result<Option<StageRecord>> {
        if self.sync.world_size() == 1 {
            return Ok(local);
        }
        let message = self.sync.broadcast(vec![u8::from(local.is_some())])?;
        match (message.first() == Some(&1), local) {
            (false, _) => Ok(None),
            (true, Some(record)) => Ok(Some(record)),
            (true, None) => Err(Error::Group {
                rank: self.sync.rank(),
                world_size: self.sync.world_size(),
                detail: format!(
                    "rank 0 found {} done and this rank does not: every rank must see the \
                     same output folder",
                    work.display()
                ),
            }),
        }
    }

    /// Waits until rank 0 has written what the next stage reads.
    fn written(&self) -> Result<()> {
        if self.sync.world_size() > 1 {
            self.sync.broadcast(Vec::new())?;
        }
        Ok(())
    }

    fn train(
        &self,
        lc: &LoopConfig,
        params: &Params,
        objective: &dyn crate::trainer::Objective,
        ckpt: &Checkpoints,
        stop_after: Option<u64>,
        on_step: impl FnMut(&LogRow) -> Result<()>,
    ) -> Result<crate::trainer::RunReport> {
        train_data_parallel(
            lc,
            params,
            objective,
            ckpt,
            stop_after,
            &*self.sync,
            on_step,
        )
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
            schedule: Schedule {
                steps,
                batch_size: batch,
                grad_accum: accum,
                lr,
                warmup: s.schedule.warmup.min(steps / 2),
                max_grad_norm: s.schedule.max_grad_norm,
            },
            adamw: AdamWConfig::default(),
            seed: s.seed.wrapping_add(stream),
            checkpoint_every: s.checkpoint_every,
            loss_scaling: false,
        }
    }

    fn vae_key(&self) -> String {
        let s = &self.settings;
        let mut parts = vec![
            "vae/1".to_owned(),
            self.inputs_key.clone(),
            s.resolution.to_string(),
            s.seed.to_string(),
            s.demo.vae_steps.to_string(),
            s.demo.vae_lr.to_string(),
            s.demo.vae_kl_weight.to_string(),
            s.demo.batch_size.to_string(),
            format!("{:?}", demo_vae_config()),
        ];
        parts.extend(self.world_tag());
        digest(&parts.iter().map(String::as_str).collect::<Vec<_>>())
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
        let current =
            read_record(&work, &key).filter(|_| work.join("model").join("config.json").is_file());
        if let Some(r) = self.agreed_record(&work, current)? {
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
        let report = self.train(&lc, &params, &objective, &ckpt, None, |r| {
            on_step("vae", r);
            Ok(())
        })?;
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
        if self.writes() {
            crate::folder::write_vae(&work.join("model"), &cfg, sample, &params.tensors())?;
        }
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
        if self.writes() {
            write_record(&work, &record)?;
            ckpt.clear()?;
        }
        self.written()?;
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
        let current =
            read_record(&work, &key).filter(|_| base_dir.join("anchor_base.json").is_file());
        if let Some(r) = self.agreed_record(&work, current)? {
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
        let report = self.train(&lc, &params, &objective, &ckpt, None, |r| {
            on_step("unet", r);
            Ok(())
        })?;
        if !self.writes() {
            self.written()?;
            return Ok(unwritten_record(key, report));
        }

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
        self.written()?;
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
                    if self.writes() {
                        crate::st::write(
                            &path,
                            &[("logvar".into(), l.clone()), ("mean".into(), m.clone())],
                            &BTreeMap::new(),
                        )?;
                    }
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
                    if self.writes() {
                        let tensors = [("embeddings".into(), e.clone())];
                        crate::st::write(&path, &tensors, &BTreeMap::new())?;
                    }
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
        own.validation = ValidationSettings::default();
        own.demo.batch_size = 0;
        own.demo.vae_steps = 0;
        own.demo.unet_steps = 0;
        if c == TrainedLora::Lora {
            own.weighting = SubjectWeighting::Fixed(0.0);
        }
        let mut parts = vec![
            "lora/1".to_owned(),
            c.name().to_owned(),
            base_id.clone(),
            self.inputs_key.clone(),
            to_json(&own)?,
        ];
        parts.extend(self.world_tag());
        let key = digest(&parts.iter().map(String::as_str).collect::<Vec<_>>());
        let work = self.layout.work(c.name());
        let lora_path = self.layout.weights_file(c, s.full_finetune);
        let current = read_record(&work, &key).filter(|_| lora_path.is_file());
        if let Some(r) = self.agreed_record(&work, current)? {
            if self.writes() {
                self.update_manifest(&base, &base_id, c, &lora_path)?;
            }
            self.written()?;
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
        let mut lc = self.loop_config(
            s.schedule.steps,
            s.schedule.lr,
            s.schedule.batch_size,
            s.schedule.grad_accum,
            stream,
        );
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
        let validator = if self.writes() && !s.validation.is_off() {
            let dir = self.layout.validation_dir(c, s.full_finetune);
            // Images of an earlier run (other settings) would read as this run's; those of
            // the run being resumed stay.
            if !ckpt.resumable()? && dir.exists() {
                std::fs::remove_dir_all(&dir).at(&dir)?;
            }
            let examples: Vec<Example> = s
                .validation
                .prompts
                .iter()
                .enumerate()
                .map(|(i, prompt)| Example {
                    id: format!("validation-{i}"),
                    caption: prompt.clone(),
                    image: Vec::new(),
                    subjects: Vec::new(),
                })
                .collect();
            let (prompts, _) = self.prompts(&examples, text.special_tokens(), None)?;
            Some(Validator::new(
                &s.validation,
                &prompts,
                &text,
                &unet,
                &vae,
                schedule.clone(),
                (s.resolution, s.seed, s.schedule.steps),
                dir,
            )?)
        } else {
            None
        };
        let name = c.name();
        let report = self.train(&lc, &params, &objective, &ckpt, stop_after, |r| {
            on_step(name, r);
            match &validator {
                Some(v) if v.due(r.step) => v.write(r.step).map(|_| ()),
                _ => Ok(()),
            }
        })?;
        let finished = report.log.len() as u64 == s.schedule.steps;
        if !finished || !self.writes() {
            // Stopped early on request (tests): the checkpoint stays for the resume. A
            // finished rank other than 0 waits for rank 0's files and writes none.
            if finished {
                self.written()?;
            }
            return Ok(unwritten_record(key, report));
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
        self.written()?;
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

/// The record of a stage this process trained but does not write (a rank other than 0, or
/// a run stopped early): no facts, since those describe written files.
fn unwritten_record(key: String, report: crate::trainer::RunReport) -> StageRecord {
    StageRecord {
        key,
        log: report.log,
        facts: serde_json::Value::Null,
        seconds: report.seconds,
        steps_run: report.steps_run,
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
