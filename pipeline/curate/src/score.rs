//! The `score` step, the parallel half of `anchor curate`: for every `pairs` row, decode the
//! image within limits and measure it (perceptual hashes, quality metrics, NSFW score) into
//! `pairs_scored`. One part per `pairs` part, so it shards and resumes like the scrape.
//!
//! With CLIP weights ([`ScoreParams::clip`]) it also fills `clip_similarity` and `clip_iqa`
//! ([`crate::clip`]), batching the decoded images of the part [`IMAGE_BATCH`] at a time;
//! without them both columns are null and the stats count every row under `clip_off`.
//!
//! No threshold is applied here. Every filter decision happens in the cheap global `curate`
//! step, so re-tuning a threshold never re-runs the NSFW model.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_str};
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{self, TableDef, pairs, pairs_scored};
use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use serde::Serialize;

use anchor_filters::DropReason;
use anchor_filters::decode::{self, DecodeLimits};
use anchor_filters::hash;
use anchor_filters::nsfw;
use anchor_filters::nsfw_runtime::{NsfwRuntime, NsfwScorer};
use anchor_filters::quality;

use crate::Error;
use crate::clip::{ClipScorer, ClipScores, ClipScoring, IMAGE_BATCH, similarity_caption};

/// Rows decoded per batch (each row holds one image's bytes).
const READ_BATCH: usize = 32;

/// Parameters of the `score` step.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreParams {
    /// The open_nsfw ONNX file (its sha256 is part of the fingerprint through `nsfw_sha256`).
    #[serde(skip)]
    pub nsfw_model: PathBuf,
    /// The pinned sha256 of the model (checked at load).
    pub nsfw_sha256: &'static str,
    /// The package's JPEG round trip before the model (its default).
    pub nsfw_jpeg_round_trip: bool,
    /// The runtime that runs the model (runtimes differ in the last float bits).
    pub nsfw_runtime: NsfwRuntime,
    /// Decoder limits (decompression-bomb guard).
    pub decode: DecodeLimitsParams,
    /// CLIP weights for `clip_similarity` and `clip_iqa`; `None` leaves them null. Absent
    /// from the fingerprint when `None`, so the weights' sha256 (never their path) is what
    /// makes the step re-run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipScoring>,
}

/// [`DecodeLimits`] as parameters.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeLimitsParams {
    /// Largest side accepted.
    pub max_side: u32,
    /// Most pixels accepted.
    pub max_pixels: u64,
}

impl ScoreParams {
    /// Defaults with the model at `nsfw_model`, run by `nsfw_runtime`.
    pub fn new(nsfw_model: PathBuf, nsfw_runtime: NsfwRuntime) -> Self {
        let limits = DecodeLimits::default();
        ScoreParams {
            nsfw_model,
            nsfw_sha256: nsfw::MODEL_SHA256,
            nsfw_jpeg_round_trip: true,
            nsfw_runtime,
            decode: DecodeLimitsParams {
                max_side: limits.max_side,
                max_pixels: limits.max_pixels,
            },
            clip: None,
        }
    }

    fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_side: self.decode.max_side,
            max_pixels: self.decode.max_pixels,
            ..DecodeLimits::default()
        }
    }
}

/// The `score` step.
pub struct ScoreStep {
    params: ScoreParams,
    model: OnceLock<Result<Arc<NsfwScorer>, String>>,
    clip: OnceLock<Result<Option<Arc<ClipScorer>>, String>>,
}

impl ScoreStep {
    /// A step with `params`; the model loads on the first part.
    pub fn new(params: ScoreParams) -> Self {
        ScoreStep {
            params,
            model: OnceLock::new(),
            clip: OnceLock::new(),
        }
    }

    /// The parameters.
    pub fn params_ref(&self) -> &ScoreParams {
        &self.params
    }

    fn clip(&self) -> Result<Option<Arc<ClipScorer>>, BoxError> {
        self.clip
            .get_or_init(|| match &self.params.clip {
                None => Ok(None),
                Some(scoring) => ClipScorer::load(&scoring.weights)
                    .map(|c| Some(Arc::new(c)))
                    .map_err(|e| e.to_string()),
            })
            .clone()
            .map_err(BoxError::from)
    }

    fn model(&self) -> Result<Arc<NsfwScorer>, BoxError> {
        self.model
            .get_or_init(|| {
                NsfwScorer::load(
                    &self.params.nsfw_model,
                    &self.params.nsfw_runtime,
                    self.params.nsfw_jpeg_round_trip,
                )
                .map(Arc::new)
                .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(BoxError::from)
    }
}

/// One scored row.
#[derive(Debug, Default)]
struct Scored {
    id: String,
    image_error: Option<(DropReason, String)>,
    hashes: Option<hash::PerceptualHashes>,
    metrics: Option<quality::QualityMetrics>,
    nsfw: Option<f64>,
    clip: Option<ClipScores>,
}

/// Decoded images waiting for a CLIP forward pass: (index in the part's rows, image, caption).
#[derive(Default)]
struct ClipQueue {
    rows: Vec<usize>,
    images: Vec<image::DynamicImage>,
    captions: Vec<Option<String>>,
}

impl ClipQueue {
    fn flush(
        &mut self,
        scorer: &ClipScorer,
        rows: &mut [Scored],
        stats: &mut PartStats,
    ) -> Result<(), Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let captions: Vec<Option<&str>> = self.captions.iter().map(|c| c.as_deref()).collect();
        let scores = scorer.score(&self.images, &captions)?;
        for (&i, s) in self.rows.iter().zip(scores) {
            if let Some(row) = rows.get_mut(i) {
                row.clip = Some(s);
            }
        }
        stats.time("clip", started.elapsed().as_secs_f64());
        stats.count("clip_scored", self.rows.len() as u64);
        self.rows.clear();
        self.images.clear();
        self.captions.clear();
        Ok(())
    }
}

impl StepId for ScoreStep {
    /// Step name.
    const NAME: &'static str = "score";
    /// Bump when output semantics change (2: the CLIP columns; 3: JPEGs decoded and the NSFW
    /// round trip encoded by libjpeg-turbo, as Pillow does, which moves `nsfw` and JPEG hashes).
    const VERSION: u32 = 3;
}

impl Step for ScoreStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&pairs_scored::DEF]
    }
    fn plan(&self, ctx: &StepCtx) -> Result<usize, BoxError> {
        // Fail before any work when the model is missing or corrupt, with the fix in the message.
        nsfw::verify_model(&self.params.nsfw_model)?;
        self.params.nsfw_runtime.verify()?;
        // A bad CLIP folder fails here too, before any part is written.
        self.clip()?;
        Ok(ctx.input(pairs::NAME)?.parts.len())
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let model = self.model()?;
        let clip = self.clip()?;
        let mut queue = ClipQueue::default();
        let limits = self.params.limits();
        let reader = ctx.reader(pairs::NAME)?;
        let columns = [
            pairs::ID,
            pairs::IMAGE,
            pairs::STATUS,
            pairs::ERROR_CLASS,
            pairs::CAPTION,
        ];
        let mut stats = PartStats::default();
        let mut rows: Vec<Scored> = Vec::new();
        for batch in reader.read_part(part, Some(&columns), READ_BATCH)? {
            let batch = batch?;
            let cols = Columns::new(&batch, pairs::NAME);
            let ids = cols.utf8(pairs::ID)?;
            let status = cols.utf8(pairs::STATUS)?;
            let error_class = cols.utf8(pairs::ERROR_CLASS)?;
            let captions = cols.utf8(pairs::CAPTION)?;
            let (image, bytes) = cols.image_bytes(pairs::IMAGE)?;
            for row in 0..batch.num_rows() {
                let mut scored = Scored {
                    id: ids.value(row).to_owned(),
                    ..Scored::default()
                };
                if status.value(row) != "success" || image.is_null(row) || bytes.is_null(row) {
                    let detail = match opt_str(error_class, row) {
                        Some(class) => format!("{} ({class})", status.value(row)),
                        None => status.value(row).to_owned(),
                    };
                    scored.image_error = Some((DropReason::NotDownloaded, detail));
                    rows.push(scored);
                    continue;
                }
                let data = bytes.value(row);
                let started = Instant::now();
                match decode::decode(data, &limits) {
                    Err(e) => scored.image_error = Some((e.drop_reason(), e.to_string())),
                    Ok(decoded) => {
                        stats.time("decode", started.elapsed().as_secs_f64());
                        let started = Instant::now();
                        scored.hashes = Some(hash::hashes(&decoded.image));
                        stats.time("hash", started.elapsed().as_secs_f64());
                        let started = Instant::now();
                        scored.metrics = Some(quality::measure(&decoded.image, data.len() as u64));
                        stats.time("quality", started.elapsed().as_secs_f64());
                        let started = Instant::now();
                        // Preprocessing depends on the image (a data problem, recorded);
                        // inference failing is a model problem and stops the part.
                        match nsfw::preprocess(&decoded.image, self.params.nsfw_jpeg_round_trip) {
                            Ok(input) => {
                                let (_, unsafe_score) = model.run(&input)?;
                                scored.nsfw = Some(f64::from(unsafe_score));
                            }
                            Err(e) => {
                                scored.image_error = Some((
                                    DropReason::Undecodable,
                                    format!("NSFW preprocessing: {e}"),
                                ))
                            }
                        }
                        stats.time("nsfw", started.elapsed().as_secs_f64());
                        if let Some(scorer) = &clip
                            && scored.image_error.is_none()
                        {
                            queue.rows.push(rows.len());
                            queue.images.push(decoded.image);
                            queue.captions.push(
                                opt_str(captions, row)
                                    .and_then(similarity_caption)
                                    .map(str::to_owned),
                            );
                            if queue.rows.len() >= IMAGE_BATCH {
                                rows.push(scored);
                                queue.flush(scorer, &mut rows, &mut stats)?;
                                continue;
                            }
                        }
                    }
                }
                rows.push(scored);
            }
            ctx.progress().inc(0);
        }
        match &clip {
            Some(scorer) => queue.flush(scorer, &mut rows, &mut stats)?,
            None => stats.count("clip_off", rows.len() as u64),
        }
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        for r in &rows {
            match &r.image_error {
                Some((reason, _)) => stats.count(&format!("image_error.{reason}"), 1),
                None => stats.count("decoded", 1),
            }
        }
        sink.write(pairs_scored::NAME, &scored_batch(&rows)?)?;
        Ok(stats)
    }
}

fn scored_batch(rows: &[Scored]) -> Result<RecordBatch, Error> {
    let mut id = StringBuilder::new();
    let mut image_error = StringBuilder::new();
    let mut image_error_detail = StringBuilder::new();
    let mut phash = StringBuilder::new();
    let mut dhash = StringBuilder::new();
    let mut width = Int32Builder::new();
    let mut height = Int32Builder::new();
    let mut shortest = Int32Builder::new();
    let mut area = Int64Builder::new();
    let mut aspect = Float64Builder::new();
    let mut blur = Float64Builder::new();
    let mut entropy = Float64Builder::new();
    let mut dark = Float64Builder::new();
    let mut light = Float64Builder::new();
    let mut grayscale = BooleanBuilder::new();
    let mut placeholder = BooleanBuilder::new();
    let mut file_size = Int64Builder::new();
    let mut nsfw_score = Float64Builder::new();
    let mut clip_similarity = Float32Builder::new();
    let mut clip_iqa = Float32Builder::new();
    for r in rows {
        id.append_value(&r.id);
        image_error.append_option(r.image_error.as_ref().map(|(reason, _)| reason.as_str()));
        image_error_detail.append_option(r.image_error.as_ref().map(|(_, d)| d.as_str()));
        phash.append_option(r.hashes.map(|h| h.phash.to_hex()));
        dhash.append_option(r.hashes.map(|h| h.dhash.to_hex()));
        let m = r.metrics.as_ref();
        width.append_option(m.map(|m| clamp_i32(m.width)));
        height.append_option(m.map(|m| clamp_i32(m.height)));
        shortest.append_option(m.map(|m| clamp_i32(m.shortest_side)));
        area.append_option(m.map(|m| i64::try_from(m.area).unwrap_or(i64::MAX)));
        aspect.append_option(m.map(|m| m.aspect_ratio));
        blur.append_option(m.map(|m| m.blur));
        entropy.append_option(m.map(|m| m.entropy));
        dark.append_option(m.map(|m| m.dark));
        light.append_option(m.map(|m| m.light));
        grayscale.append_option(m.map(|m| m.grayscale));
        placeholder.append_option(m.map(|m| m.placeholder));
        file_size.append_option(m.map(|m| i64::try_from(m.file_size).unwrap_or(i64::MAX)));
        nsfw_score.append_option(r.nsfw);
        clip_similarity.append_option(r.clip.and_then(|c| c.similarity));
        clip_iqa.append_option(r.clip.map(|c| c.iqa));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(image_error.finish()),
        Arc::new(image_error_detail.finish()),
        Arc::new(phash.finish()),
        Arc::new(dhash.finish()),
        Arc::new(width.finish()),
        Arc::new(height.finish()),
        Arc::new(shortest.finish()),
        Arc::new(area.finish()),
        Arc::new(aspect.finish()),
        Arc::new(blur.finish()),
        Arc::new(entropy.finish()),
        Arc::new(dark.finish()),
        Arc::new(light.finish()),
        Arc::new(grayscale.finish()),
        Arc::new(placeholder.finish()),
        Arc::new(file_size.finish()),
        Arc::new(nsfw_score.finish()),
        Arc::new(clip_similarity.finish()),
        Arc::new(clip_iqa.finish()),
    ];
    RecordBatch::try_new(tables::pairs_scored::schema(), columns).map_err(Error::from)
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}
