//! The `sample` step: one image per (caption, configuration, seed) into `generations`.
//!
//! Work items are sorted by (configuration, caption id, seed) and cut into fixed slices of
//! `images_per_part`, so a part is the unit of resume and of `--shard`, and the table comes
//! out sorted. Noise is a pure function of the seed (drawn on the CPU whatever the device)
//! and everything runs in f32, so the same parameters on the same kind of device give
//! byte-identical parts. The device is not a parameter: see the crate docs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{self, TableDef, generations};
use anchor_sd::SubjectSpan;
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::configuration::{Configuration, SchedulerKind, WeightingKind};
use crate::error::{Error, Result};
use crate::inputs::{Caption, SubjectsNote, load_captions};
use crate::model::{ModelSet, Pipeline, SamplerSettings, sha256_file};
use crate::png::encode_png;

/// The settings of a sampling run that are plain values, shared by [`SampleParams`] and a
/// config section, which gives them by these names (absent keys: the paper's settings, the
/// test split, 100 steps, guidance 7.5, seeds 42 and 371, 8 images per part, one at a time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplePlan {
    /// The `splits` split whose captions are sampled.
    pub split: String,
    /// Noise seeds (sorted, no duplicates after [`SampleParams::normalize`]).
    pub seeds: Vec<u64>,
    /// Denoising steps.
    pub steps: usize,
    /// Classifier-free guidance scale.
    pub guidance: f64,
    /// Images per part (the resume unit).
    pub images_per_part: usize,
    /// Images denoised together; part of the fingerprint because batching may change the
    /// last bits of float sums.
    pub batch_size: usize,
}

impl Default for SamplePlan {
    fn default() -> Self {
        SamplePlan {
            split: "test".into(),
            seeds: vec![42, 371],
            steps: 100,
            guidance: 7.5,
            images_per_part: 8,
            batch_size: 1,
        }
    }
}

/// Everything that shapes the output besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleParams {
    /// Configurations to sample (sorted, no duplicates after [`SampleParams::normalize`]).
    pub configurations: Vec<Configuration>,
    /// Split, seeds, steps, guidance, part and batch sizes; their keys sit beside the
    /// others' in the fingerprint.
    #[serde(flatten)]
    pub plan: SamplePlan,
    /// At most this many captions (the first by id); `None`: all.
    pub max_captions: Option<usize>,
    /// The sampler.
    pub scheduler: SchedulerKind,
    /// Where subject weights come from.
    pub weighting: WeightingKind,
    /// Image side in pixels.
    pub resolution: usize,
}

impl SampleParams {
    /// The paper's settings: every configuration, the test split, 100 DDIM steps, guidance 7.5,
    /// seeds 42 and 371, fixed weighting, 512 px.
    pub fn paper() -> Self {
        SampleParams {
            configurations: Configuration::ALL.to_vec(),
            plan: SamplePlan::default(),
            max_captions: None,
            scheduler: SchedulerKind::Ddim,
            weighting: WeightingKind::Fixed,
            resolution: crate::model::DEFAULT_RESOLUTION,
        }
    }

    /// Sorts and deduplicates, then checks the values.
    pub fn normalize(mut self) -> Result<Self> {
        self.configurations.sort_by_key(|c| c.as_str());
        self.configurations.dedup();
        self.plan.seeds.sort_unstable();
        self.plan.seeds.dedup();
        let bad = |m: String| Err(Error::Config(m));
        if self.configurations.is_empty() {
            return bad("no configurations to sample".into());
        }
        if self.plan.seeds.is_empty() {
            return bad("no seeds".into());
        }
        if let Some(s) = self.plan.seeds.iter().find(|&&s| i64::try_from(s).is_err()) {
            return bad(format!("seed {s} does not fit the table's Int64 column"));
        }
        if self.plan.steps == 0 || self.plan.steps > 1000 {
            return bad(format!("steps {} outside 1..=1000", self.plan.steps));
        }
        if !self.plan.guidance.is_finite() || self.plan.guidance < 1.0 {
            return bad(format!(
                "guidance {} must be finite and >= 1",
                self.plan.guidance
            ));
        }
        if self.plan.images_per_part == 0 || self.plan.batch_size == 0 {
            return bad("images_per_part and batch_size must be positive".into());
        }
        if self.plan.split.is_empty() {
            return bad("empty split name".into());
        }
        Ok(self)
    }

    /// The sampler settings of every image.
    pub fn sampler(&self) -> SamplerSettings {
        SamplerSettings {
            steps: self.plan.steps,
            guidance: self.plan.guidance,
            scheduler: self.scheduler,
            resolution: self.resolution,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Item {
    configuration: Configuration,
    caption: usize,
    seed: u64,
}

/// Weights and vocabulary, resolved.
struct Ready {
    models: ModelSet,
    vocab: PathBuf,
    vocab_sha256: String,
}

/// The sampling step with its resolved weights.
pub struct SampleStep {
    params: SampleParams,
    /// `Err`: why the weights could not be resolved (see [`SampleStep::blocked`]).
    ready: std::result::Result<Ready, String>,
    device: Device,
    captions: Mutex<Option<(String, Arc<Vec<Caption>>)>>,
    pipeline: Mutex<Option<Arc<Pipeline>>>,
}

impl SampleStep {
    /// Prepares the step; weights load on the first part that needs them.
    pub fn new(
        params: SampleParams,
        models: ModelSet,
        vocab: PathBuf,
        device: Device,
    ) -> Result<Self> {
        let params = params.normalize()?;
        for c in &params.configurations {
            if let Some(l) = c.lora()
                && !models.loras.contains_key(l)
            {
                return Err(Error::MissingLora {
                    configuration: c.as_str().into(),
                    lora: l.into(),
                    reason: "it was not resolved".into(),
                });
            }
        }
        models.check_resolution(params.resolution)?;
        if !vocab.is_file() {
            return Err(Error::Config(format!(
                "CLIP vocabulary {} is missing; run `scripts/fetch-models.sh clip-vocab`",
                vocab.display()
            )));
        }
        let vocab_sha256 = sha256_file(&vocab)?;
        Ok(SampleStep {
            params,
            ready: Ok(Ready {
                models,
                vocab,
                vocab_sha256,
            }),
            device,
            captions: Mutex::new(None),
            pipeline: Mutex::new(None),
        })
    }

    /// A step whose weights could not be resolved (before any training, say): `anchor status`
    /// can still show it, and running it fails with `reason`.
    pub fn blocked(params: SampleParams, reason: String) -> Self {
        SampleStep {
            params,
            ready: Err(reason),
            device: Device::Cpu,
            captions: Mutex::new(None),
            pipeline: Mutex::new(None),
        }
    }

    fn ready(&self) -> Result<&Ready> {
        self.ready
            .as_ref()
            .map_err(|reason| Error::Config(format!("cannot sample: {reason}")))
    }

    /// The normalised parameters.
    pub fn sample_params(&self) -> &SampleParams {
        &self.params
    }

    /// The resolved weights (`None` for a blocked step).
    pub fn models(&self) -> Option<&ModelSet> {
        self.ready.as_ref().ok().map(|r| &r.models)
    }

    fn captions(&self, ctx: &StepCtx) -> Result<Arc<Vec<Caption>>> {
        let mut slot = self
            .captions
            .lock()
            .map_err(|_| Error::Config("caption cache lock poisoned".into()))?;
        if let Some((fp, c)) = slot.as_ref()
            && fp == ctx.fingerprint()
        {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(load_captions(
            ctx,
            &self.params.plan.split,
            self.params.max_captions,
        )?);
        *slot = Some((ctx.fingerprint().to_owned(), Arc::clone(&c)));
        Ok(c)
    }

    fn pipeline(&self) -> Result<Arc<Pipeline>> {
        let mut slot = self
            .pipeline
            .lock()
            .map_err(|_| Error::Config("model cache lock poisoned".into()))?;
        if let Some(p) = slot.as_ref() {
            return Ok(Arc::clone(p));
        }
        let ready = self.ready()?;
        let p = Arc::new(Pipeline::load(&ready.models, &ready.vocab, &self.device)?);
        *slot = Some(Arc::clone(&p));
        Ok(p)
    }

    fn items(&self, n_captions: usize) -> Vec<Item> {
        let mut items = Vec::new();
        for &configuration in &self.params.configurations {
            for caption in 0..n_captions {
                for &seed in &self.params.plan.seeds {
                    items.push(Item {
                        configuration,
                        caption,
                        seed,
                    });
                }
            }
        }
        items
    }

    fn part(&self, part: usize, ctx: &StepCtx, sink: &mut PartSink) -> Result<PartStats> {
        let captions = self.captions(ctx)?;
        let items = self.items(captions.len());
        let per = self.params.plan.images_per_part;
        let slice = items
            .get(part * per..((part + 1) * per).min(items.len()))
            .ok_or_else(|| {
                Error::Config(format!(
                    "part {part} is outside the {} work items",
                    items.len()
                ))
            })?;
        let mut stats = PartStats {
            rows_in: slice.len() as u64,
            ..PartStats::default()
        };
        let pipeline = self.pipeline()?;
        let settings = self.params.sampler();
        let weighting = self.params.weighting.weighting();
        let mut rows: Vec<generations::Row> = Vec::new();
        for group in slice.chunk_by(|a, b| a.configuration == b.configuration) {
            let configuration = group[0].configuration;
            let lora = configuration.lora();
            let unet = pipeline.unet(lora)?;
            let model_id = pipeline.models().model_id(lora);
            for chunk in group.chunks(self.params.plan.batch_size) {
                let mut prompts = Vec::with_capacity(chunk.len());
                let mut texts = Vec::with_capacity(chunk.len());
                for item in chunk {
                    let c = &captions[item.caption];
                    count_subjects(&mut stats, configuration, c);
                    let names: Vec<&str> = c.subjects.iter().map(|s| s.text.as_str()).collect();
                    let text = configuration.prompt(&c.caption, &names);
                    let spans: Vec<SubjectSpan> = if configuration.weighted() {
                        c.subjects
                            .iter()
                            .map(|s| SubjectSpan {
                                chars: s.start..s.end,
                                weight: s.weight,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let fitted = pipeline.prompt(&text, &spans, weighting)?;
                    if fitted.truncated {
                        stats.count("truncated", 1);
                    }
                    prompts.push(fitted);
                    texts.push(text);
                }
                let seeds: Vec<u64> = chunk.iter().map(|i| i.seed).collect();
                let started = Instant::now();
                let images = pipeline.generate(&unet, &prompts, &seeds, &settings)?;
                stats.time("generate_s", started.elapsed().as_secs_f64());
                stats.count("images", images.len() as u64);
                for ((item, image), (prompt, fitted)) in chunk
                    .iter()
                    .zip(images)
                    .zip(texts.into_iter().zip(&prompts))
                {
                    let c = &captions[item.caption];
                    let path = format!("{configuration}/{}-{}.png", c.id, item.seed);
                    let bytes = encode_png(&image, &path)?;
                    rows.push(generations::Row {
                        id: c.id.clone(),
                        configuration: configuration.as_str().to_owned(),
                        seed: item.seed as i64,
                        steps: self.params.plan.steps as i32,
                        guidance: self.params.plan.guidance,
                        scheduler: self.params.scheduler.as_str().to_owned(),
                        prompt,
                        split: c.split.clone(),
                        subset: c.subset.clone(),
                        outlet: c.outlet.clone(),
                        topic: c.topic.clone(),
                        model_id: model_id.clone(),
                        truncated: fitted.truncated,
                        width: image.width as i32,
                        height: image.height as i32,
                        png: bytes,
                        path,
                    });
                }
            }
        }
        stats.rows_out = rows.len() as u64;
        sink.write(generations::NAME, &generations::to_batch(&rows)?)?;
        Ok(stats)
    }
}

fn count_subjects(stats: &mut PartStats, configuration: Configuration, c: &Caption) {
    let uses_subjects = configuration.weighted() || configuration == Configuration::Prefix;
    if !uses_subjects {
        return;
    }
    match c.note {
        SubjectsNote::Found => {}
        SubjectsNote::NoRow => stats.count("subjects_row_missing", 1),
        SubjectsNote::CaptionChanged => stats.count("subjects_caption_changed", 1),
    }
    if c.subjects.is_empty() {
        stats.count("no_subjects", 1);
    }
}

impl StepId for SampleStep {
    /// Step name (subcommand and state folder).
    const NAME: &'static str = "sample";
    /// Bump when output semantics change (2: the caption's topic).
    const VERSION: u32 = 2;
}

impl Step for SampleStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(match &self.ready {
            Ok(r) => {
                let loras: std::collections::BTreeMap<&str, &str> = r
                    .models
                    .loras
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.sha256.as_str()))
                    .collect();
                serde_json::json!({
                    "sampling": self.params,
                    "fixed_weight": anchor_sd::FIXED_SUBJECT_WEIGHT,
                    "base_id": r.models.base_id,
                    "loras": loras,
                    "tokenizer_sha256": r.vocab_sha256,
                })
            }
            Err(reason) => serde_json::json!({
                "sampling": self.params,
                "unresolved": reason,
            }),
        })
    }

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            tables::pairs_curated::NAME,
            tables::splits::NAME,
            tables::subjects::NAME,
        ]
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&generations::DEF]
    }

    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        self.ready()?;
        let n = self.captions(ctx)?.len();
        if n == 0 {
            return Err(Box::new(Error::Config(format!(
                "split `{}` has no kept captions in pairs_curated",
                self.params.plan.split
            ))));
        }
        let items = n * self.params.configurations.len() * self.params.plan.seeds.len();
        Ok(items.div_ceil(self.params.plan.images_per_part))
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        Ok(self.part(part, ctx, sink)?)
    }
}
