//! The generic training loop: micro-batches drawn in a seeded per-epoch order, gradient
//! accumulation, grad-norm clipping, AdamW on a cosine schedule, and checkpoints that hold
//! everything the next step depends on (variables, AdamW moments, the RNG state, the data
//! cursor and the log so far). A run killed at any point resumes from its last checkpoint
//! and produces exactly the log and weights of an uninterrupted run.
//!
//! Data-parallel runs ([`train_data_parallel`]) split each micro-batch across processes:
//! every process draws the whole global batch's samples and randomness from the same
//! seeded streams, computes the loss on its own rows, and averages gradients (and the
//! logged loss) through a [`GradientSync`] before clipping and the optimiser step. With
//! `N` processes of batch `B` a step is therefore the step of one process with batch
//! `N × B`, and every process holds the same weights after it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::error::{Error, IoAt, Result};
use crate::optim::{AdamW, AdamWConfig, Params, accumulate, clip_grad_norm, cosine_lr};
use crate::precision::LossScaler;
use crate::rng::Rng;

/// How long a run trains, on what batches and at what learning rate. The training
/// settings, the config file's `[train]` section and each run's [`LoopConfig`] share it, so
/// these keys are declared once; absent keys take the defaults of a LoRA run on the demo
/// base.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Schedule {
    /// Optimiser steps.
    pub steps: u64,
    /// Samples per micro-batch (per process in a data-parallel run).
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps of the cosine schedule.
    pub warmup: u64,
    /// Global grad-norm clip (0 = off).
    pub max_grad_norm: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            steps: 200,
            batch_size: 4,
            grad_accum: 1,
            lr: 1e-4,
            warmup: 20,
            max_grad_norm: 1.0,
        }
    }
}

/// Settings of one training run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopConfig {
    /// Steps, batches and learning rate.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Seed of the data order and of every random draw.
    pub seed: u64,
    /// Steps between checkpoints (0 = only at the end).
    pub checkpoint_every: u64,
    /// Dynamic loss scaling (f16 training).
    #[serde(default)]
    pub loss_scaling: bool,
}

impl LoopConfig {
    fn validate(&self, n: usize) -> Result<()> {
        let bad = |what, reason: String| Err(Error::Config { what, reason });
        let s = &self.schedule;
        if s.steps == 0 {
            return bad("steps", "must be at least 1".into());
        }
        if s.batch_size == 0 || s.grad_accum == 0 {
            return bad("batch_size/grad_accum", "must be at least 1".into());
        }
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return bad("lr", format!("{} is not a positive number", s.lr));
        }
        if n == 0 {
            return bad("data", "the training set is empty".into());
        }
        Ok(())
    }
}

/// One `train_log` row.
///
/// Floats are stored in checkpoints and stage records by their bits: serde_json's default
/// float parsing is not round-trip exact, and a resumed log must equal the uninterrupted one
/// bit for bit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogRow {
    /// Optimiser step, from 1.
    pub step: u64,
    /// Epoch of the step's first sample.
    pub epoch: u64,
    /// Mean loss over the step's micro-batches.
    #[serde(with = "f64_bits")]
    pub loss: f64,
    /// Learning rate used.
    #[serde(with = "f64_bits")]
    pub lr: f64,
    /// Gradient norm before clipping.
    #[serde(with = "f64_bits")]
    pub grad_norm: f64,
}

mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.to_bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(f64::from_bits(u64::deserialize(d)?))
    }
}

/// What a training run optimises.
pub trait Objective {
    /// Number of training examples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The mean loss over `rows` of the batch `indices`. Noise and augmentations are drawn
    /// from `rng` for the whole batch, in the same order whatever `rows` is, so that the
    /// processes of a data-parallel run, each computing its own rows, draw what one process
    /// computing every row would.
    fn loss(&self, indices: &[usize], rows: Range<usize>, rng: &mut Rng) -> Result<Tensor>;
}

/// How the processes of a data-parallel run share their gradients.
pub trait GradientSync: Sync {
    /// This process's index, `0..world_size`.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world_size(&self) -> usize;
    /// The mean over the processes of each gradient and of `loss`. Every process passes
    /// gradients of the same shapes in the same order and gets the same result back.
    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)>;
    /// Rank 0's `message`, handed to every rank; the other ranks' `message` is ignored.
    /// Rank 0 uses it to tell the others what to do next (which part to train, whether a
    /// stage is already done), so that every rank takes the same path.
    fn broadcast(&self, message: Vec<u8>) -> Result<Vec<u8>>;
}

/// A run of one process: nothing to share.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl GradientSync for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)> {
        Ok((grads, loss))
    }
    fn broadcast(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        Ok(message)
    }
}

/// Everything a checkpoint holds besides tensors.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CheckpointState {
    /// Identifies the run (settings, inputs); a checkpoint of another run is never resumed.
    run_key: String,
    /// Completed optimiser steps.
    step: u64,
    /// AdamW's update count.
    adam_t: u64,
    /// The RNG state for the next step.
    rng: Rng,
    /// Index of the next sample in the endless epoch stream.
    cursor: u64,
    /// The log so far.
    log: Vec<LogRow>,
    /// The loss scaler's state (f16 training only).
    #[serde(default)]
    scaler: Option<LossScaler>,
}

/// Where a run keeps its checkpoints, and under which run key.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    /// The folder (one `step-NNNNNNNN` sub-folder per checkpoint, the latest kept).
    pub dir: PathBuf,
    /// Settings and inputs digest of the run.
    pub run_key: String,
}

fn step_dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

impl Checkpoints {
    fn save(&self, params: &Params, opt: &AdamW, state: &CheckpointState) -> Result<()> {
        let name = step_dir_name(state.step);
        let tmp = self.dir.join(format!(".tmp-{name}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        std::fs::create_dir_all(&tmp).at(&tmp)?;
        let none = BTreeMap::new();
        crate::st::write(&tmp.join("params.safetensors"), &params.tensors(), &none)?;
        crate::st::write(&tmp.join("optim.safetensors"), &opt.state(params), &none)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Checkpoint {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        crate::st::write_bytes(&tmp.join("state.json"), &json)?;
        let dest = self.dir.join(&name);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).at(&dest)?;
        }
        // The rename is the commit point: a kill before it leaves the previous checkpoint.
        std::fs::rename(&tmp, &dest).at(&dest)?;
        for (step, path) in self.list()? {
            if step < state.step {
                std::fs::remove_dir_all(&path).at(&path)?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            if let Some(step) = name
                .to_str()
                .and_then(|n| n.strip_prefix("step-"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((step, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether this run has a checkpoint to resume from (nothing is removed).
    pub fn resumable(&self) -> Result<bool> {
        Ok(self.latest(false)?.is_some())
    }

    /// The latest checkpoint of this run, if any; checkpoints of other runs are removed
    /// when `writer` (the process that writes checkpoints) asks.
    fn latest(&self, writer: bool) -> Result<Option<(PathBuf, CheckpointState)>> {
        let mut found = None;
        for (_, path) in self.list()?.into_iter().rev() {
            let state_path = path.join("state.json");
            let parsed: Option<CheckpointState> = std::fs::read(&state_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match parsed {
                Some(s) if s.run_key == self.run_key && found.is_none() => {
                    found = Some((path, s));
                }
                Some(s) if s.run_key == self.run_key => {}
                _ if !writer => {}
                _ => {
                    tracing::info!(path = %path.display(), "removing a checkpoint of other settings");
                    std::fs::remove_dir_all(&path).at(&path)?;
                }
            }
        }
        Ok(found)
    }

    /// Removes every checkpoint (after the final weights are saved).
    pub fn clear(&self) -> Result<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).at(&self.dir)?;
        }
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The whole log, from step 1.
    pub log: Vec<LogRow>,
    /// Step the run resumed from (0 = fresh).
    pub resumed_from: u64,
    /// Steps computed by this call.
    pub steps_run: u64,
    /// Wall-clock seconds of those steps.
    pub seconds: f64,
    /// Optimiser steps skipped by the loss scaler (non-finite f16 gradients), over the run.
    pub skipped_steps: u64,
}

/// Runs (or resumes) training of `params` on `objective`. `stop_after` ends the call after
/// that step without finishing (tests simulate a kill with it); `on_step` sees each row before
/// the step's checkpoint, and an error from it stops the run.
pub fn train(
    cfg: &LoopConfig,
    params: &Params,
    objective: &dyn Objective,
    ckpt: &Checkpoints,
    stop_after: Option<u64>,
    on_step: impl FnMut(&LogRow) -> Result<()>,
) -> Result<RunReport> {
    train_data_parallel(
        cfg,
        params,
        objective,
        ckpt,
        stop_after,
        &SingleProcess,
        on_step,
    )
}

/// [`train`] as one process of a data-parallel run that shares gradients through `sync`
/// (see the module docs). Every process reads the latest checkpoint of `ckpt`; only rank 0
/// writes checkpoints, so processes on one machine share the folder.
pub fn train_data_parallel(
    cfg: &LoopConfig,
    params: &Params,
    objective: &dyn Objective,
    ckpt: &Checkpoints,
    stop_after: Option<u64>,
    sync: &dyn GradientSync,
    mut on_step: impl FnMut(&LogRow) -> Result<()>,
) -> Result<RunReport> {
    let n = objective.len();
    cfg.validate(n)?;
    let (rank, world) = (sync.rank(), sync.world_size());
    if world == 0 || rank >= world {
        return Err(Error::Config {
            what: "data-parallel rank",
            reason: format!("rank {rank} of world size {world}"),
        });
    }
    let writer = rank == 0;
    let local_rows = rank * cfg.schedule.batch_size..(rank + 1) * cfg.schedule.batch_size;
    if params.is_empty() {
        return Err(Error::Config {
            what: "trainable variables",
            reason: "none selected".into(),
        });
    }
    let mut opt = AdamW::new(params, cfg.adamw)?;
    let mut state = CheckpointState {
        run_key: ckpt.run_key.clone(),
        step: 0,
        adam_t: 0,
        rng: Rng::new(cfg.seed, 0x7A11),
        cursor: 0,
        log: Vec::new(),
        scaler: cfg.loss_scaling.then(LossScaler::default),
    };
    if let Some((path, saved)) = ckpt.latest(writer)? {
        let dev = params
            .vars()
            .first()
            .map(|v| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        params.load(&crate::st::read(&path.join("params.safetensors"), &dev)?)?;
        opt.load_state(
            params,
            &crate::st::read(&path.join("optim.safetensors"), &dev)?,
            saved.adam_t,
        )?;
        tracing::info!(step = saved.step, path = %path.display(), "resuming from checkpoint");
        state = saved;
    }
    let resumed_from = state.step;
    let started = std::time::Instant::now();
    let mut perms: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut next_sample = |cursor: &mut u64| -> (u64, usize) {
        let epoch = *cursor / n as u64;
        let pos = (*cursor % n as u64) as usize;
        let perm = perms
            .entry(epoch)
            .or_insert_with(|| Rng::new(cfg.seed, 0xE90C_0000 + epoch).permutation(n));
        *cursor += 1;
        (epoch, perm[pos])
    };
    while state.step < cfg.schedule.steps {
        let step = state.step + 1;
        let lr = cosine_lr(
            cfg.schedule.lr,
            step,
            cfg.schedule.warmup,
            cfg.schedule.steps,
        );
        let epoch = state.cursor / n as u64;
        let mut acc = None;
        let mut loss_sum = 0f64;
        for _ in 0..cfg.schedule.grad_accum {
            let indices: Vec<usize> = (0..cfg.schedule.batch_size * world)
                .map(|_| next_sample(&mut state.cursor).1)
                .collect();
            let loss = objective.loss(&indices, local_rows.clone(), &mut state.rng)?;
            let value = loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()? as f64;
            // In a data-parallel run every process must reach the reduction, which carries
            // the non-finite loss to all of them; they stop together below.
            if !value.is_finite() && world == 1 {
                return Err(Error::Diverged {
                    configuration: ckpt.dir.display().to_string(),
                    step,
                    loss: value,
                });
            }
            loss_sum += value;
            let scale = state.scaler.map_or(1.0, |s| s.scale);
            let grads = (loss * (scale / cfg.schedule.grad_accum as f64))?.backward()?;
            accumulate(params, &mut acc, &grads)?;
        }
        let grads = acc.ok_or_else(|| Error::Config {
            what: "grad_accum",
            reason: "no micro-batch ran".into(),
        })?;
        let (mut grads, loss_sum) = sync.all_reduce_mean(grads, loss_sum)?;
        if !loss_sum.is_finite() {
            return Err(Error::Diverged {
                configuration: ckpt.dir.display().to_string(),
                step,
                loss: loss_sum,
            });
        }
        if let Some(scaler) = &state.scaler {
            let unscale = 1.0 / scaler.scale;
            grads = grads
                .iter()
                .map(|g| g * unscale)
                .collect::<candle_core::Result<_>>()?;
        }
        let (grad_norm, grads) = clip_grad_norm(&grads, cfg.schedule.max_grad_norm)?;
        let finite = grad_norm.is_finite();
        match state.scaler.as_mut() {
            // GradScaler's rule: an overflowed step is skipped, not applied; the schedule
            // still advances, as in diffusers' scripts.
            Some(scaler) => scaler.update(finite),
            None if !finite => {
                return Err(Error::NonFiniteGradient {
                    configuration: ckpt.dir.display().to_string(),
                    step,
                    grad_norm,
                });
            }
            None => {}
        }
        if finite {
            opt.step(params, &grads, lr)?;
        }
        state.step = step;
        state.adam_t = opt.t;
        let row = LogRow {
            step,
            epoch,
            loss: loss_sum / cfg.schedule.grad_accum as f64,
            lr,
            grad_norm,
        };
        on_step(&row)?;
        state.log.push(row);
        let boundary = cfg.checkpoint_every > 0 && step.is_multiple_of(cfg.checkpoint_every);
        if writer && (boundary || step == cfg.schedule.steps) {
            ckpt.save(params, &opt, &state)?;
        }
        if stop_after == Some(step) && step < cfg.schedule.steps {
            break;
        }
    }
    Ok(RunReport {
        skipped_steps: state.scaler.map_or(0, |s| s.skipped),
        steps_run: state.step - resumed_from,
        log: state.log,
        resumed_from,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Path helper for tests and callers: the latest checkpoint folder, if any.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    let c = Checkpoints {
        dir: dir.to_path_buf(),
        run_key: String::new(),
    };
    Ok(c.list()?.pop().map(|(_, p)| p))
}
