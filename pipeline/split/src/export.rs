//! The `export` step: the published images and rows in the Hugging Face layout.
//!
//! One part per `pairs` part: the kept pairs of that part are decoded, cropped to their
//! entropy-based salient square, resized (512 px by default, never upscaled) and re-encoded as
//! JPEG, then written to `dataset/<subset>/<split>-NNNNN-of-MMMMM.parquet`. A file is only
//! written when it has rows, and the files of one (subset, split) are numbered contiguously:
//! `MMMMM` counts the `pairs` parts that hold kept pairs of that (subset, split) and `NNNNN` is
//! this part's rank among them, so the names do not depend on how the run was sharded. Each
//! part writes its files atomically and lists them in its stats (`file:<path>` counters with
//! the row count, `bytes:<path>` with the file size), which the `card` step uses to describe
//! the splits and to remove files of earlier, different runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_f64, opt_i64, opt_str, str_list};
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::store::PartWriter;
use anchor_core::tables::{self, TableDef, dataset, pairs, pairs_curated, splits};
use anchor_filters::crop::{self, CropParams};
use anchor_filters::decode::{self, DecodeLimits};
use arrow_array::builder::{
    BinaryBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray};
use serde::Serialize;

use crate::{Error, Result, hf};

/// Prefix of the stats counters that list the files a part wrote, with their row counts.
pub const FILE_COUNTER_PREFIX: &str = "file:";
/// Prefix of the stats counters that give the size in bytes of each file a part wrote.
pub const FILE_BYTES_PREFIX: &str = "bytes:";

/// Parameters of the `export` step.
#[derive(Debug, Clone, Serialize)]
pub struct ExportParams {
    /// Crop output size and JPEG quality.
    pub crop: CropParams,
    /// Publish the original bytes instead of the crop.
    pub original_images: bool,
}

/// The folder of the published dataset.
pub fn dataset_dir(out: &Path) -> PathBuf {
    out.join("dataset")
}

/// File name of the `index`-th of the `count` files of (`subset`, `split`).
pub fn file_name(subset: &str, split: &str, index: usize, count: usize) -> String {
    format!("{subset}/{split}-{index:05}-of-{count:05}.parquet")
}

/// For each (subset, split), the `pairs` parts that hold kept pairs of it, ascending.
type FileLayout = BTreeMap<(String, String), Vec<usize>>;

/// What the export needs of one kept pair besides its bytes.
#[derive(Debug, Clone)]
struct Meta {
    split: String,
    subset: String,
    caption: String,
    credit: Option<String>,
    outlet: String,
    source: String,
    article_url: String,
    image_url: String,
    headline: Option<String>,
    published_at: Option<String>,
    topic: String,
    language: Option<String>,
    language_confidence: Option<f32>,
    caption_tokens: i32,
    sha256: String,
    phash: String,
    dhash: String,
    dup_cluster_id: String,
    other_captions: Vec<String>,
    file_size: i64,
    aspect_ratio: f64,
    blur: f64,
    entropy: f64,
    dark: f64,
    light: f64,
    nsfw: f64,
    clip_similarity: Option<f32>,
    clip_iqa: Option<f32>,
}

/// The `export` step.
pub struct ExportStep {
    params: ExportParams,
    kept: OnceLock<std::result::Result<Arc<HashMap<String, Meta>>, String>>,
    layout: OnceLock<std::result::Result<Arc<FileLayout>, String>>,
}

impl ExportStep {
    /// A step with `params`.
    pub fn new(params: ExportParams) -> Self {
        ExportStep {
            params,
            kept: OnceLock::new(),
            layout: OnceLock::new(),
        }
    }

    fn layout(&self, ctx: &StepCtx, kept: &HashMap<String, Meta>) -> Result<Arc<FileLayout>> {
        self.layout
            .get_or_init(|| {
                read_layout(ctx, kept)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::Inconsistent)
    }

    fn kept(&self, ctx: &StepCtx) -> Result<Arc<HashMap<String, Meta>>> {
        self.kept
            .get_or_init(|| read_kept(ctx).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::Inconsistent)
    }
}

fn missing(id: &str, column: &str) -> Error {
    Error::Inconsistent(format!(
        "kept pair {id} has no {column} in pairs_curated; re-run `anchor curate --force`"
    ))
}

fn read_kept(ctx: &StepCtx) -> Result<HashMap<String, Meta>> {
    let mut split_of: HashMap<String, String> = HashMap::new();
    for batch in ctx.reader(splits::NAME)?.read_all(None, 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, splits::NAME);
        let (id, split) = (c.utf8(splits::ID)?, c.utf8(splits::SPLIT)?);
        for r in 0..batch.num_rows() {
            split_of.insert(id.value(r).to_owned(), split.value(r).to_owned());
        }
    }
    let mut kept = HashMap::new();
    for batch in ctx.reader(pairs_curated::NAME)?.read_all(None, 4096) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_curated::NAME);
        use pairs_curated as pc;
        let keep = c.boolean(pc::KEPT)?;
        let id = c.utf8(pc::ID)?;
        let (caption, credit, outlet, source) = (
            c.utf8(pc::CAPTION)?,
            c.utf8(pc::CREDIT)?,
            c.utf8(pc::OUTLET)?,
            c.utf8(pc::SOURCE)?,
        );
        let (article_url, image_url, headline, published, topic) = (
            c.utf8(pc::ARTICLE_URL)?,
            c.utf8(pc::IMAGE_URL)?,
            c.utf8(pc::HEADLINE)?,
            c.utf8(pc::PUBLISHED_AT)?,
            c.utf8(pc::TOPIC)?,
        );
        let (subset, language, tokens) = (
            c.utf8(pc::SUBSET)?,
            c.utf8(pc::LANGUAGE)?,
            c.int32(pc::CAPTION_TOKENS)?,
        );
        let (sha, phash, dhash, cluster) = (
            c.utf8(pc::SHA256)?,
            c.utf8(pc::PHASH)?,
            c.utf8(pc::DHASH)?,
            c.utf8(pc::DUP_CLUSTER_ID)?,
        );
        let others = c.list(pc::OTHER_CAPTIONS)?;
        let file_size = c.int64(pc::FILE_SIZE)?;
        let (aspect, blur, entropy, dark, light, nsfw) = (
            c.float64(pc::ASPECT_RATIO)?,
            c.float64(pc::BLUR)?,
            c.float64(pc::ENTROPY)?,
            c.float64(pc::DARK)?,
            c.float64(pc::LIGHT)?,
            c.float64(pc::NSFW)?,
        );
        let clip_sim = float32(&batch, pc::CLIP_SIMILARITY)?;
        let clip_iqa = float32(&batch, pc::CLIP_IQA)?;
        let language_confidence = float32(&batch, pc::LANGUAGE_CONFIDENCE)?;
        for r in 0..batch.num_rows() {
            if !keep.value(r) {
                continue;
            }
            let pid = id.value(r);
            let req_s = |a: &arrow_array::StringArray, col: &str| {
                opt_str(a, r)
                    .map(str::to_owned)
                    .ok_or_else(|| missing(pid, col))
            };
            let req_f = |a: &arrow_array::Float64Array, col: &str| {
                opt_f64(a, r).ok_or_else(|| missing(pid, col))
            };
            let split = split_of.get(pid).cloned().ok_or_else(|| {
                Error::Inconsistent(format!(
                    "kept pair {pid} has no split; re-run `anchor split --force`"
                ))
            })?;
            kept.insert(
                pid.to_owned(),
                Meta {
                    split,
                    subset: subset.value(r).to_owned(),
                    caption: caption.value(r).to_owned(),
                    credit: opt_str(credit, r).map(str::to_owned),
                    outlet: outlet.value(r).to_owned(),
                    source: source.value(r).to_owned(),
                    article_url: article_url.value(r).to_owned(),
                    image_url: image_url.value(r).to_owned(),
                    headline: opt_str(headline, r).map(str::to_owned),
                    published_at: opt_str(published, r).map(str::to_owned),
                    topic: topic.value(r).to_owned(),
                    language: opt_str(language, r).map(str::to_owned),
                    language_confidence: (!language_confidence.is_null(r))
                        .then(|| language_confidence.value(r)),
                    caption_tokens: tokens.value(r),
                    sha256: req_s(sha, pc::SHA256)?,
                    phash: req_s(phash, pc::PHASH)?,
                    dhash: req_s(dhash, pc::DHASH)?,
                    dup_cluster_id: req_s(cluster, pc::DUP_CLUSTER_ID)?,
                    other_captions: str_list(others, r),
                    file_size: opt_i64(file_size, r).ok_or_else(|| missing(pid, pc::FILE_SIZE))?,
                    aspect_ratio: req_f(aspect, pc::ASPECT_RATIO)?,
                    blur: req_f(blur, pc::BLUR)?,
                    entropy: req_f(entropy, pc::ENTROPY)?,
                    dark: req_f(dark, pc::DARK)?,
                    light: req_f(light, pc::LIGHT)?,
                    nsfw: req_f(nsfw, pc::NSFW)?,
                    clip_similarity: (!clip_sim.is_null(r)).then(|| clip_sim.value(r)),
                    clip_iqa: (!clip_iqa.is_null(r)).then(|| clip_iqa.value(r)),
                },
            );
        }
    }
    if kept.len() != split_of.len() {
        return Err(Error::Inconsistent(format!(
            "pairs_curated keeps {} pairs but splits has {}; re-run `anchor split --force`",
            kept.len(),
            split_of.len()
        )));
    }
    Ok(kept)
}

/// Which `pairs` parts hold kept pairs of each (subset, split): reads only the id column.
fn read_layout(ctx: &StepCtx, kept: &HashMap<String, Meta>) -> Result<FileLayout> {
    let reader = ctx.reader(pairs::NAME)?;
    let n_parts = ctx.input(pairs::NAME)?.parts.len();
    let mut layout = FileLayout::new();
    for part in 0..n_parts {
        for batch in reader.read_part(part, Some(&[pairs::ID]), 8192)? {
            let batch = batch?;
            let c = Columns::new(&batch, pairs::NAME);
            let id = c.utf8(pairs::ID)?;
            for r in 0..batch.num_rows() {
                if let Some(meta) = kept.get(id.value(r)) {
                    let parts = layout
                        .entry((meta.subset.clone(), meta.split.clone()))
                        .or_default();
                    if parts.last() != Some(&part) {
                        parts.push(part);
                    }
                }
            }
        }
    }
    Ok(layout)
}

/// A `Float32` column of `pairs_curated` (core's `Columns` has no Float32 accessor).
pub(crate) fn float32<'a>(
    batch: &'a RecordBatch,
    column: &str,
) -> Result<&'a arrow_array::Float32Array> {
    batch
        .column_by_name(column)
        .and_then(|a| a.as_any().downcast_ref::<arrow_array::Float32Array>())
        .ok_or_else(|| {
            Error::Inconsistent(format!(
                "pairs_curated has no Float32 column {column}; re-run `anchor curate --force`"
            ))
        })
}

/// One exported row.
struct Exported {
    id: String,
    bytes: Vec<u8>,
    path: String,
    width: i32,
    height: i32,
    original: (i32, i32),
    crop: Option<crop::Square>,
}

impl StepId for ExportStep {
    /// Step name.
    const NAME: &'static str = "export";
    /// Bump when output semantics change (2: the CLIP score columns; 3: contiguous file numbers;
    /// 4: `language_confidence`; 5: `topic`).
    const VERSION: u32 = 5;
}

impl Step for ExportStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs::NAME, pairs_curated::NAME, splits::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        Vec::new()
    }
    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(ctx.input(pairs::NAME)?.parts.len())
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        _sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let kept = self.kept(ctx)?;
        let layout = self.layout(ctx, &kept)?;
        let limits = DecodeLimits::default();
        let mut groups: BTreeMap<(String, String), Vec<Exported>> = BTreeMap::new();
        let reader = ctx.reader(pairs::NAME)?;
        let mut stats = PartStats::default();
        for batch in reader.read_part(part, Some(&[pairs::ID, pairs::IMAGE]), 32)? {
            let batch = batch?;
            let c = Columns::new(&batch, pairs::NAME);
            let id = c.utf8(pairs::ID)?;
            let (image, bytes) = c.image_bytes(pairs::IMAGE)?;
            let paths = image
                .column_by_name("path")
                .and_then(|a| a.as_any().downcast_ref::<arrow_array::StringArray>());
            for r in 0..batch.num_rows() {
                let pid = id.value(r);
                let Some(meta) = kept.get(pid) else { continue };
                if image.is_null(r) || bytes.is_null(r) {
                    return Err(missing(pid, "image bytes in pairs").into());
                }
                let data = bytes.value(r);
                // The curate step decoded these same bytes; failing now means the input changed.
                let decoded = decode::decode(data, &limits).map_err(|e| {
                    Error::Inconsistent(format!("kept pair {pid} no longer decodes: {e}"))
                })?;
                let (ow, oh) = (decoded.image.width(), decoded.image.height());
                let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
                let exported = if self.params.original_images {
                    let name = paths.and_then(|p| opt_str(p, r)).unwrap_or(pid).to_owned();
                    Exported {
                        id: pid.to_owned(),
                        bytes: data.to_vec(),
                        path: name,
                        width: to_i32(ow),
                        height: to_i32(oh),
                        original: (to_i32(ow), to_i32(oh)),
                        crop: None,
                    }
                } else {
                    let (jpeg, square) = crop::crop_resize_jpeg(&decoded.image, &self.params.crop)
                        .map_err(|source| Error::Image {
                            id: pid.to_owned(),
                            source,
                        })?;
                    let side = to_i32(square.side.min(self.params.crop.size));
                    Exported {
                        id: pid.to_owned(),
                        bytes: jpeg,
                        path: format!("{pid}.jpg"),
                        width: side,
                        height: side,
                        original: (to_i32(ow), to_i32(oh)),
                        crop: Some(square),
                    }
                };
                groups
                    .entry((meta.subset.clone(), meta.split.clone()))
                    .or_default()
                    .push(exported);
            }
        }
        let dir = dataset_dir(ctx.out());
        for ((subset, split), mut rows) in groups {
            rows.sort_by(|a, b| a.id.cmp(&b.id));
            let parts = layout
                .get(&(subset.clone(), split.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let index = parts.iter().position(|&p| p == part).ok_or_else(|| {
                Error::Inconsistent(format!(
                    "part {part} holds {subset}/{split} rows that the file layout did not see"
                ))
            })?;
            let name = file_name(&subset, &split, index, parts.len());
            let schema =
                hf::with_features(&dataset::schema(), &[dataset::IMAGE]).map_err(Error::Config)?;
            let mut writer = PartWriter::create_at(
                dir.join(&name),
                &dataset::DEF,
                ctx.fingerprint(),
                Some(part),
                schema.clone(),
            )?;
            let batch = rows_batch(&rows, &kept, &split)?;
            let batch = batch.with_schema(schema).map_err(Error::from)?;
            writer.write(&batch)?;
            writer.commit()?;
            let path = dir.join(&name);
            let size = std::fs::metadata(&path)
                .map_err(|source| Error::Io { path, source })?
                .len();
            stats.count(&format!("{FILE_COUNTER_PREFIX}{name}"), rows.len() as u64);
            stats.count(&format!("{FILE_BYTES_PREFIX}{name}"), size);
            stats.count(&format!("rows.{subset}.{split}"), rows.len() as u64);
        }
        Ok(stats)
    }
}

fn rows_batch(rows: &[Exported], kept: &HashMap<String, Meta>, split: &str) -> Result<RecordBatch> {
    let mut b_id = StringBuilder::new();
    let mut b_bytes = BinaryBuilder::new();
    let mut b_path = StringBuilder::new();
    let mut b_caption = StringBuilder::new();
    let mut b_credit = StringBuilder::new();
    let mut b_outlet = StringBuilder::new();
    let mut b_source = StringBuilder::new();
    let mut b_article_url = StringBuilder::new();
    let mut b_image_url = StringBuilder::new();
    let mut b_headline = StringBuilder::new();
    let mut b_published = StringBuilder::new();
    let mut b_topic = StringBuilder::new();
    let mut b_subset = StringBuilder::new();
    let mut b_split = StringBuilder::new();
    let mut b_language = StringBuilder::new();
    let mut b_language_confidence = Float32Builder::new();
    let mut b_tokens = Int32Builder::new();
    let mut b_width = Int32Builder::new();
    let mut b_height = Int32Builder::new();
    let mut b_ow = Int32Builder::new();
    let mut b_oh = Int32Builder::new();
    let mut b_cx = Int32Builder::new();
    let mut b_cy = Int32Builder::new();
    let mut b_cs = Int32Builder::new();
    let mut b_sha = StringBuilder::new();
    let mut b_phash = StringBuilder::new();
    let mut b_dhash = StringBuilder::new();
    let mut b_cluster = StringBuilder::new();
    let mut b_others = ListBuilder::new(StringBuilder::new());
    let mut b_file_size = Int64Builder::new();
    let mut b_aspect = Float64Builder::new();
    let mut b_blur = Float64Builder::new();
    let mut b_entropy = Float64Builder::new();
    let mut b_dark = Float64Builder::new();
    let mut b_light = Float64Builder::new();
    let mut b_nsfw = Float64Builder::new();
    let mut b_clip_sim = Float32Builder::new();
    let mut b_clip_iqa = Float32Builder::new();
    for row in rows {
        let m = kept
            .get(&row.id)
            .ok_or_else(|| Error::Inconsistent(format!("pair {} lost its metadata", row.id)))?;
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        b_id.append_value(&row.id);
        b_bytes.append_value(&row.bytes);
        b_path.append_value(&row.path);
        b_caption.append_value(&m.caption);
        b_credit.append_option(m.credit.as_deref());
        b_outlet.append_value(&m.outlet);
        b_source.append_value(&m.source);
        b_article_url.append_value(&m.article_url);
        b_image_url.append_value(&m.image_url);
        b_headline.append_option(m.headline.as_deref());
        b_published.append_option(m.published_at.as_deref());
        b_topic.append_value(&m.topic);
        b_subset.append_value(&m.subset);
        b_split.append_value(split);
        b_language.append_option(m.language.as_deref());
        b_language_confidence.append_option(m.language_confidence);
        b_tokens.append_value(m.caption_tokens);
        b_width.append_value(row.width);
        b_height.append_value(row.height);
        b_ow.append_value(row.original.0);
        b_oh.append_value(row.original.1);
        b_cx.append_option(row.crop.map(|s| to_i32(s.x)));
        b_cy.append_option(row.crop.map(|s| to_i32(s.y)));
        b_cs.append_option(row.crop.map(|s| to_i32(s.side)));
        b_sha.append_value(&m.sha256);
        b_phash.append_value(&m.phash);
        b_dhash.append_value(&m.dhash);
        b_cluster.append_value(&m.dup_cluster_id);
        for c in &m.other_captions {
            b_others.values().append_value(c);
        }
        b_others.append(true);
        b_file_size.append_value(m.file_size);
        b_aspect.append_value(m.aspect_ratio);
        b_blur.append_value(m.blur);
        b_entropy.append_value(m.entropy);
        b_dark.append_value(m.dark);
        b_light.append_value(m.light);
        b_nsfw.append_value(m.nsfw);
        b_clip_sim.append_option(m.clip_similarity);
        b_clip_iqa.append_option(m.clip_iqa);
    }
    let image = StructArray::try_new(
        tables::image_fields(),
        vec![Arc::new(b_bytes.finish()), Arc::new(b_path.finish())],
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(b_id.finish()),
        Arc::new(image),
        Arc::new(b_caption.finish()),
        Arc::new(b_credit.finish()),
        Arc::new(b_outlet.finish()),
        Arc::new(b_source.finish()),
        Arc::new(b_article_url.finish()),
        Arc::new(b_image_url.finish()),
        Arc::new(b_headline.finish()),
        Arc::new(b_published.finish()),
        Arc::new(b_topic.finish()),
        Arc::new(b_subset.finish()),
        Arc::new(b_split.finish()),
        Arc::new(b_language.finish()),
        Arc::new(b_language_confidence.finish()),
        Arc::new(b_tokens.finish()),
        Arc::new(b_width.finish()),
        Arc::new(b_height.finish()),
        Arc::new(b_ow.finish()),
        Arc::new(b_oh.finish()),
        Arc::new(b_cx.finish()),
        Arc::new(b_cy.finish()),
        Arc::new(b_cs.finish()),
        Arc::new(b_sha.finish()),
        Arc::new(b_phash.finish()),
        Arc::new(b_dhash.finish()),
        Arc::new(b_cluster.finish()),
        Arc::new(b_others.finish()),
        Arc::new(b_file_size.finish()),
        Arc::new(b_aspect.finish()),
        Arc::new(b_blur.finish()),
        Arc::new(b_entropy.finish()),
        Arc::new(b_dark.finish()),
        Arc::new(b_light.finish()),
        Arc::new(b_nsfw.finish()),
        Arc::new(b_clip_sim.finish()),
        Arc::new(b_clip_iqa.finish()),
    ];
    Ok(RecordBatch::try_new(dataset::schema(), columns)?)
}
