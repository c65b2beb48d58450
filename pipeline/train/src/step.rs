//! The `train` step: one part per thing trained, in order `vae`, `unet` (the demo base,
//! only without `--base`), then the configurations (`lora`, `safe`). Each part writes its
//! `train_log` rows; checkpoints inside a part make a killed part resume exactly where it
//! left off, and the runner skips parts already committed.
//!
//! Training reads the `train` split as the export step published it (the images users of
//! the dataset get, by default the entropy-based crop), so the export must have run; the
//! export run's fingerprint is part of the checkpoints' identity.
//!
//! The LoRA parts need the base: a part that finds the demo base missing trains it itself
//! (under a lock, so two parts in one process never train it twice), so parts can run in
//! any order, in parallel, or in other shards.
//!
//! A data-parallel run ([`TrainStep::in_group`]) is `N` processes on one output folder.
//! Rank 0 runs the step as usual, one part at a time, and before each part tells the
//! other ranks which one; they [`follow`](TrainStep::follow), computing their rows of
//! every batch and writing nothing.

use std::path::Path;
use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{self, TableDef, pairs, pairs_curated, splits, subjects, train_log};
use arrow_array::RecordBatch;
use candle_core::Device;
use std::sync::{Mutex, OnceLock};

use crate::data;
use crate::error::{Error, Result};
use crate::layout::{Layout, StageRecord};
use crate::settings::{TrainSettings, TrainedLora};
use crate::stages::{Prepared, StageRunner};
use crate::trainer::{GradientSync, LogRow, SingleProcess};

/// What one part trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The demo VAE.
    Vae,
    /// The demo UNet (the stand-in base).
    Unet,
    /// A LoRA configuration.
    Lora(TrainedLora),
}

impl Part {
    /// The `configuration` column value.
    pub fn name(self) -> &'static str {
        match self {
            Part::Vae => "vae",
            Part::Unet => "unet",
            Part::Lora(c) => c.name(),
        }
    }
}

/// The train step.
pub struct TrainStep {
    settings: TrainSettings,
    device: Device,
    /// A cheap identity of `--base` (file sizes) for the fingerprint; the LoRA records hash
    /// the files themselves.
    base_stamp: Option<serde_json::Value>,
    trainer: OnceLock<Arc<StageRunner>>,
    prepared: Mutex<Option<Arc<Prepared>>>,
    /// Wall-clock seconds and steps run per part (the CLI prints steps/s).
    timings: Mutex<Vec<(String, f64, u64)>>,
    /// The ranks of a data-parallel run (one process: [`SingleProcess`]).
    sync: Arc<dyn GradientSync + Send>,
    /// Held by rank 0 for a whole part in a data-parallel run: the ranks train one part at
    /// a time, whatever the runner's `--jobs`.
    lockstep: Mutex<()>,
    /// Set when a part failed in a data-parallel run: the other ranks are then stuck in
    /// that part, so this process must not announce another.
    group_failed: std::sync::atomic::AtomicBool,
}

/// What rank 0 tells the other ranks before each part, and when the run is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Part(usize),
    Done,
}

impl Order {
    fn encode(self) -> Vec<u8> {
        match self {
            Order::Part(i) => [b"P".as_slice(), &(i as u64).to_le_bytes()].concat(),
            Order::Done => b"D".to_vec(),
        }
    }

    fn decode(message: &[u8]) -> Option<Self> {
        match message {
            [b'D'] => Some(Order::Done),
            [b'P', index @ ..] => {
                let index: [u8; 8] = index.try_into().ok()?;
                usize::try_from(u64::from_le_bytes(index))
                    .ok()
                    .map(Order::Part)
            }
            _ => None,
        }
    }
}

impl TrainStep {
    /// A step with `settings`, on the CPU (or the first GPU with the `cuda` feature).
    pub fn new(settings: TrainSettings) -> Result<Self> {
        Self::on_device(settings, default_device()?)
    }

    /// A step with `settings` computing on `device`; the device is not a parameter.
    pub fn on_device(settings: TrainSettings, device: Device) -> Result<Self> {
        if settings.configurations.is_empty() && settings.base.is_some() {
            return Err(Error::Config {
                what: "configurations",
                reason: "nothing to train: give lora and/or safe".into(),
            });
        }
        if settings.resolution == 0 || !settings.resolution.is_multiple_of(8) {
            return Err(Error::Config {
                what: "resolution",
                reason: format!("{} is not a positive multiple of 8", settings.resolution),
            });
        }
        if settings.lora.rank == 0 {
            return Err(Error::Config {
                what: "rank",
                reason: "must be at least 1".into(),
            });
        }
        let base_stamp = match &settings.base {
            None => None,
            Some(b) => {
                let mut stamp = serde_json::Map::new();
                for rel in [
                    "unet/diffusion_pytorch_model.safetensors",
                    "vae/diffusion_pytorch_model.safetensors",
                    "text_encoder/model.safetensors",
                ] {
                    let p = b.join(rel);
                    let meta = std::fs::metadata(&p).map_err(|e| Error::Config {
                        what: "base",
                        reason: format!("{}: {e} (expected a diffusers folder)", p.display()),
                    })?;
                    stamp.insert(rel.into(), serde_json::json!(meta.len()));
                }
                Some(serde_json::Value::Object(stamp))
            }
        };
        settings.precision.check_device(&device)?;
        Ok(Self {
            settings,
            device,
            base_stamp,
            trainer: OnceLock::new(),
            prepared: Mutex::new(None),
            timings: Mutex::new(Vec::new()),
            sync: Arc::new(SingleProcess),
            lockstep: Mutex::new(()),
            group_failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The step as one rank of a data-parallel run whose ranks share gradients through
    /// `sync` (see the module docs). The world size is a parameter: `N` processes of
    /// batch `B` train as one process of batch `N × B` would.
    pub fn in_group(mut self, sync: Arc<dyn GradientSync + Send>) -> Self {
        self.sync = sync;
        self
    }

    /// This process's rank in its data-parallel run (0 for a run of one process).
    pub fn rank(&self) -> usize {
        self.sync.rank()
    }

    /// Rank 0, after the step ran (or was up to date): tells the other ranks that there is
    /// nothing more to train, so they exit. Not called when the run fails: rank 0 then
    /// exits and the others fail on the closed connection.
    pub fn release_followers(&self) -> Result<()> {
        if self.sync.world_size() > 1 && self.sync.rank() == 0 {
            self.sync.broadcast(Order::Done.encode())?;
        }
        Ok(())
    }

    /// A rank other than 0: trains each part rank 0 announces, alongside it, until rank 0
    /// says the run is over. Writes nothing. Returns the number of parts trained.
    pub fn follow(&self, out: &Path) -> std::result::Result<usize, BoxError> {
        let ctx = anchor_core::step::follower_context(self, out)?;
        let mut parts = 0;
        loop {
            let message = self.sync.broadcast(Vec::new())?;
            match Order::decode(&message) {
                Some(Order::Done) => return Ok(parts),
                Some(Order::Part(part)) => {
                    self.train_part(part, &ctx)?;
                    parts += 1;
                }
                None => {
                    return Err(Box::new(Error::Group {
                        rank: self.sync.rank(),
                        world_size: self.sync.world_size(),
                        detail: format!("rank 0 sent an unknown order {message:?}"),
                    }));
                }
            }
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TrainSettings {
        &self.settings
    }

    /// The parts in order.
    pub fn parts(&self) -> Vec<Part> {
        let mut parts = Vec::new();
        if self.settings.base.is_none() {
            parts.push(Part::Vae);
            parts.push(Part::Unet);
        }
        let mut cs = self.settings.configurations.clone();
        cs.sort();
        cs.dedup();
        parts.extend(cs.into_iter().map(Part::Lora));
        parts
    }

    /// (part, seconds, steps) of the parts this process trained.
    pub fn timings(&self) -> Vec<(String, f64, u64)> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn needs_subjects(&self) -> bool {
        self.settings.configurations.contains(&TrainedLora::Safe)
    }

    fn trainer(&self, ctx: &StepCtx) -> Arc<StageRunner> {
        self.trainer
            .get_or_init(|| {
                let mut fps: Vec<String> = self
                    .inputs()
                    .iter()
                    .filter_map(|t| ctx.input(t).ok().map(|m| format!("{t}={}", m.fingerprint)))
                    .collect();
                // The published images are read from the export run's files.
                if let Ok(fp) = anchor_core::published::export_fingerprint(ctx.out()) {
                    fps.push(format!("{}={fp}", anchor_core::tables::dataset::NAME));
                }
                fps.sort();
                Arc::new(
                    StageRunner::new(
                        self.settings.clone(),
                        Layout {
                            root: anchor_core::ledger::step_dir(ctx.out(), TrainStep::NAME),
                        },
                        fps.join(";"),
                        self.device.clone(),
                    )
                    .with_sync(self.sync.clone()),
                )
            })
            .clone()
    }

    fn prepared(
        &self,
        ctx: &StepCtx,
        trainer: &StageRunner,
        stats: &mut PartStats,
    ) -> Result<Arc<Prepared>> {
        let mut slot = self.prepared.lock().map_err(|_| Error::Config {
            what: "data",
            reason: "lock poisoned".into(),
        })?;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let subjects_reader = if self.needs_subjects() {
            Some(ctx.reader(subjects::NAME)?)
        } else {
            None
        };
        let examples = data::examples(
            ctx.out(),
            &ctx.reader(splits::NAME)?,
            subjects_reader.as_ref(),
            &mut stats.dropped,
        )?;
        let prepared = Arc::new(trainer.prepare(examples)?);
        if prepared.bad_images > 0 {
            stats
                .dropped
                .insert("bad_image".into(), prepared.bad_images);
        }
        *slot = Some(prepared.clone());
        Ok(prepared)
    }
}

impl TrainStep {
    /// Trains part `part` (or finds it done): what it trained, its record, and its stats.
    fn train_part(&self, part: usize, ctx: &StepCtx) -> Result<(Part, StageRecord, PartStats)> {
        let which = *self.parts().get(part).ok_or_else(|| Error::Config {
            what: "part",
            reason: format!("part {part} of {}", self.parts().len()),
        })?;
        let trainer = self.trainer(ctx);
        let mut stats = PartStats::default();
        let data = self.prepared(ctx, &trainer, &mut stats)?;
        stats.rows_in = data.examples.len() as u64;
        let progress = ctx.progress().clone();
        let mut on_step = |name: &str, r: &LogRow| {
            progress.set_message(format!("{name} step {} loss {:.4}", r.step, r.loss));
        };
        let record: StageRecord = match which {
            Part::Vae => trainer.ensure_vae(&data, &mut on_step)?,
            Part::Unet => trainer.ensure_base(&data, &mut on_step)?,
            Part::Lora(c) => trainer.finetune(c, &data, &mut on_step, None)?,
        };
        if let Part::Lora(TrainedLora::Safe) = which {
            let (_, with) = trainer.prompts(
                &data.examples,
                anchor_sd::SpecialTokens::sd15(),
                Some(self.settings.weighting),
            )?;
            stats.count("captions_with_subjects", with);
        }
        if let Ok(mut t) = self.timings.lock() {
            t.push((which.name().to_owned(), record.seconds, record.steps_run));
        }
        Ok((which, record, stats))
    }
}

/// CPU, or the first CUDA device when built with `cuda` and one is present.
pub fn default_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        return Ok(Device::cuda_if_available(0)?);
    }
    #[allow(unreachable_code)]
    Ok(Device::Cpu)
}

/// `train_log` rows of one configuration.
pub fn log_batch(configuration: &str, rows: &[LogRow]) -> Result<RecordBatch> {
    let rows: Vec<train_log::Row> = rows
        .iter()
        .map(|r| train_log::Row {
            configuration: configuration.to_owned(),
            step: r.step as i64,
            epoch: r.epoch as i64,
            loss: r.loss,
            lr: r.lr,
            grad_norm: r.grad_norm,
        })
        .collect();
    Ok(train_log::to_batch(&rows)?)
}

impl StepId for TrainStep {
    /// Step name (subcommand and state folder).
    const NAME: &'static str = "train";
    /// Bump when output semantics change (2: trains on the published images).
    const VERSION: u32 = 2;
}

impl Step for TrainStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        let mut v = serde_json::to_value(&self.settings)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "base_stamp".into(),
                self.base_stamp.clone().unwrap_or(serde_json::Value::Null),
            );
            if self.settings.base.is_some() {
                // The demo settings do not apply to a given base.
                obj.remove("demo");
            }
            // The vocabulary's location is not part of the result.
            obj.remove("vocab");
            let world = self.sync.world_size();
            if world > 1 {
                obj.insert("world_size".into(), world.into());
            }
        }
        Ok(v)
    }

    fn inputs(&self) -> Vec<&'static str> {
        // The published dataset is made from these three tables (by `export`), so a change
        // to any of them makes training stale; `splits` is also read directly.
        let mut t = vec![pairs::NAME, pairs_curated::NAME, splits::NAME];
        if self.needs_subjects() {
            t.push(subjects::NAME);
        }
        t
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&tables::train_log::DEF]
    }

    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        anchor_core::published::export_fingerprint(ctx.out())?;
        // Checked here rather than in `new`, so `anchor status` works without the models.
        let settings = &self.settings;
        if !settings.vocab.is_file() {
            return Err(Box::new(Error::Config {
                what: "vocab",
                reason: format!(
                    "{} not found (open_clip's bpe_simple_vocab_16e6.txt.gz; `make models` fetches it)",
                    settings.vocab.display()
                ),
            }));
        }
        Ok(self.parts().len())
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let _lockstep = if self.sync.world_size() > 1 {
            let guard = self.lockstep.lock().map_err(|_| Error::Config {
                what: "part",
                reason: "lock poisoned".into(),
            })?;
            if self.group_failed.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Box::new(Error::Group {
                    rank: 0,
                    world_size: self.sync.world_size(),
                    detail: format!("part {part} not started: an earlier part failed"),
                }));
            }
            self.sync.broadcast(Order::Part(part).encode())?;
            Some(guard)
        } else {
            None
        };
        let trained = self.train_part(part, ctx);
        if trained.is_err() {
            self.group_failed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let (which, record, mut stats) = trained?;
        sink.write(train_log::NAME, &log_batch(which.name(), &record.log)?)?;
        stats.rows_out = record.log.len() as u64;
        stats.count("steps", record.log.len() as u64);
        stats.count("steps_run", record.steps_run);
        if record.steps_run > 0 {
            stats.time(&format!("{}_train_s", which.name()), record.seconds);
        }
        Ok(stats)
    }
}
