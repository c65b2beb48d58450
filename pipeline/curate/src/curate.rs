//! The `curate` step: joins `pairs`, `articles` and `pairs_scored`, cleans captions, applies
//! every filter in funnel order, clusters exact and near duplicates over the whole dataset and
//! writes every pair exactly once, kept or with its drop reason, to `pairs_curated`.
//!
//! It is one part: deduplication needs every hash at once, and the rows are small (no image
//! bytes), about 1 KB each, so 70K pairs take tens of megabytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anchor_clip_tokenizer::ClipTokenizer;
use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_bool, opt_f64, opt_i32, opt_i64, opt_str};
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, articles, pairs, pairs_curated, pairs_scored};
use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use serde::Serialize;

use anchor_core::time::unix_seconds;
use anchor_filters::DropReason;
use anchor_filters::caption::{self, CaptionRules};
use anchor_filters::dedup::{self, Candidate, MultiIndex};
use anchor_filters::entity;
use anchor_filters::hash::Hash64;
use anchor_filters::quality::{QualityMetrics, QualityThresholds};
use anchor_text::Topic;

use crate::Error;
use crate::clip::{float32_column, opt_f32};

/// Parameters of the `curate` step.
#[derive(Debug, Clone, Serialize)]
pub struct CurateParams {
    /// Image quality thresholds.
    pub quality: QualityThresholds,
    /// Drop at NSFW score ≥ this.
    pub max_nsfw: f64,
    /// Caption rules.
    pub caption: CaptionRules,
    /// Hamming radius of pHash near-duplicates (inclusive).
    pub near_duplicate_radius: u32,
    /// Drop below this CLIP-IQA; 0 = off. Needs CLIP scores in `pairs_scored`.
    pub min_clip_iqa: f64,
    /// Drop below this CLIP image–caption cosine; 0 = off. Needs CLIP scores.
    pub min_clip_similarity: f64,
    /// The CLIP BPE vocabulary for `caption_tokens`.
    #[serde(skip)]
    pub clip_vocab: PathBuf,
    /// sha256 of the vocabulary file (fingerprinted instead of the path).
    pub clip_vocab_sha256: String,
}

impl CurateParams {
    /// Defaults with the vocabulary at `clip_vocab`, hashed now so that a changed file reruns.
    /// A missing file is not an error here (`anchor status` must work without model files);
    /// the step's `plan` reports it with the command that fetches it.
    pub fn new(clip_vocab: PathBuf) -> Self {
        let clip_vocab_sha256 = match std::fs::read(&clip_vocab) {
            Ok(bytes) => anchor_filters::hash::sha256_hex(&bytes),
            Err(_) => "missing".to_owned(),
        };
        CurateParams {
            quality: QualityThresholds::default(),
            max_nsfw: f64::from(anchor_filters::nsfw::DEFAULT_THRESHOLD),
            caption: CaptionRules::default(),
            near_duplicate_radius: dedup::DEFAULT_RADIUS,
            min_clip_iqa: 0.0,
            min_clip_similarity: 0.0,
            clip_vocab_sha256,
            clip_vocab,
        }
    }
}

/// The `curate` step.
pub struct CurateStep {
    params: CurateParams,
}

impl CurateStep {
    /// A step with `params`.
    pub fn new(params: CurateParams) -> Self {
        CurateStep { params }
    }

    /// The parameters.
    pub fn params_ref(&self) -> &CurateParams {
        &self.params
    }
}

/// One pair with everything the decision needs.
#[derive(Debug, Clone, Default)]
struct Row {
    id: String,
    article_id: String,
    outlet: String,
    source: String,
    article_url: String,
    image_url: String,
    headline: Option<String>,
    published_at: Option<String>,
    topic: Topic,
    position: i32,
    is_lead: bool,
    caption_raw: String,
    credit: Option<String>,
    alt: Option<String>,
    sha256: Option<String>,
    // From pairs_scored.
    image_error: Option<(String, String)>,
    phash: Option<String>,
    dhash: Option<String>,
    metrics: Option<QualityMetrics>,
    nsfw: Option<f64>,
    clip_similarity: Option<f32>,
    clip_iqa: Option<f32>,
    // Computed here.
    caption: String,
    language: Option<String>,
    language_confidence: Option<f32>,
    words: i32,
    tokens: i32,
    subset: &'static str,
    dup_cluster_id: Option<String>,
    dup_cluster_size: Option<i32>,
    dup_of: Option<String>,
    other_captions: Vec<String>,
    drop: Option<(DropReason, String)>,
}

impl StepId for CurateStep {
    /// Step name.
    const NAME: &'static str = "curate";
    /// Bump when output semantics change (2: the CLIP columns and filters; 3: a language and
    /// `language_confidence` for every caption, `non_english` only at high confidence; 4: credits split
    /// once, `caption_raw` raw; 5: `topic`).
    const VERSION: u32 = 5;
}

impl Step for CurateStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs::NAME, articles::NAME, pairs_scored::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&pairs_curated::DEF]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        if let Err(source) = std::fs::metadata(&self.params.clip_vocab) {
            return Err(Error::Config(format!(
                "CLIP vocabulary {}: {source}; fetch it with `scripts/fetch-models.sh clip-vocab` \
                 (or `make dataset`)",
                self.params.clip_vocab.display()
            ))
            .into());
        }
        Ok(1)
    }

    fn run_part(
        &self,
        _part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let tokenizer = ClipTokenizer::from_file(&self.params.clip_vocab)?;
        let mut rows = read_rows(ctx)?;
        let mut stats = PartStats::default();
        for row in &mut rows {
            self.decide(row, &tokenizer);
        }
        let clusters = deduplicate(&mut rows, self.params.near_duplicate_radius);
        stats.count("clusters_with_duplicates", clusters as u64);
        for row in &rows {
            match &row.drop {
                Some((reason, _)) => stats.drop_row(reason.as_str()),
                None => stats.count("kept", 1),
            }
        }
        sink.write(pairs_curated::NAME, &curated_batch(&rows)?)?;
        Ok(stats)
    }
}

impl CurateStep {
    /// Cleans the caption and applies every filter except deduplication, in funnel order.
    fn decide(&self, row: &mut Row, tokenizer: &ClipTokenizer) {
        let clean = caption::clean(&row.caption_raw, &self.params.caption);
        row.tokens = i32::try_from(tokenizer.encode(&clean.text).len()).unwrap_or(i32::MAX);
        row.words = i32::try_from(clean.words).unwrap_or(i32::MAX);
        row.subset = entity::classify(&clean.text).subset.as_str();
        row.language = clean.language.clone();
        row.language_confidence = clean.language_confidence;
        row.caption = clean.text.clone();
        let q = &self.params.quality;
        row.drop = if let Some((reason, detail)) = &row.image_error {
            let reason = DropReason::from_name(reason).unwrap_or(DropReason::Undecodable);
            Some((reason, detail.clone()))
        } else if let Some(m) = &row.metrics {
            q.check(m)
                .map(|reason| (reason, quality_detail(reason, m, q)))
                .or_else(|| {
                    let score = row.nsfw.unwrap_or(0.0);
                    (score >= self.params.max_nsfw).then(|| {
                        (
                            DropReason::Nsfw,
                            format!("nsfw {score:.4} >= {}", self.params.max_nsfw),
                        )
                    })
                })
                .or_else(|| {
                    below(row.clip_iqa, self.params.min_clip_iqa).map(|v| {
                        (
                            DropReason::LowClipIqa,
                            format!("clip_iqa {v:.4} < {}", self.params.min_clip_iqa),
                        )
                    })
                })
        } else {
            Some((
                DropReason::Undecodable,
                "no measurements in pairs_scored".to_owned(),
            ))
        };
        if row.drop.is_none()
            && let Some(reason) = clean.drop
        {
            let detail = match reason {
                DropReason::CaptionTooShort => {
                    format!("{} words < {}", clean.words, self.params.caption.min_words)
                }
                DropReason::CaptionTooLong => {
                    format!("{} words > {}", clean.words, self.params.caption.max_words)
                }
                DropReason::NonEnglish => format!(
                    "language {} (confidence {:.3} >= {}) not in {:?}",
                    clean.language.as_deref().unwrap_or("unknown"),
                    clean.language_confidence.unwrap_or(0.0),
                    caption::NON_ENGLISH_MIN_CONFIDENCE,
                    self.params.caption.languages
                ),
                _ => format!("caption {:?}", truncate(&clean.text, 60)),
            };
            row.drop = Some((reason, detail));
        }
        if row.drop.is_none()
            && let Some(v) = below(row.clip_similarity, self.params.min_clip_similarity)
        {
            row.drop = Some((
                DropReason::LowClipSimilarity,
                format!(
                    "clip_similarity {v:.4} < {}",
                    self.params.min_clip_similarity
                ),
            ));
        }
    }
}

/// The score when a threshold is on (exactly 0 is off; a cosine threshold may be negative)
/// and the score is below it. A missing score passes: the CLI refuses thresholds without CLIP
/// weights, and with weights only pairs dropped earlier (no pixels, empty caption) lack one.
fn below(score: Option<f32>, min: f64) -> Option<f32> {
    score.filter(|&v| min != 0.0 && f64::from(v) < min)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn quality_detail(reason: DropReason, m: &QualityMetrics, q: &QualityThresholds) -> String {
    match reason {
        DropReason::Placeholder => format!("{}x{} placeholder", m.width, m.height),
        DropReason::TooSmall => format!(
            "shortest side {} < {}",
            m.shortest_side, q.min_shortest_side
        ),
        DropReason::ExtremeAspect => format!(
            "aspect ratio {:.2} > {}",
            m.aspect_ratio, q.max_aspect_ratio
        ),
        DropReason::Blurry => format!("blur {:.2} < {}", m.blur, q.min_blur),
        DropReason::LowInformation => format!("entropy {:.3} < {}", m.entropy, q.min_entropy),
        DropReason::TooDark => format!("dark {:.3} < {}", m.dark, q.min_dark),
        DropReason::TooBright => format!("light {:.3} < {}", m.light, q.min_light),
        DropReason::Grayscale => "grayscale".to_owned(),
        other => other.to_string(),
    }
}

/// Clusters every decoded pair by identical SHA-256 or pHash within `radius`; in each cluster
/// keeps the best pair that passed every filter and marks the other passing pairs as
/// duplicates. Returns the number of clusters with more than one member.
fn deduplicate(rows: &mut [Row], radius: u32) -> usize {
    let decoded: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].phash.is_some() && rows[i].image_error.is_none())
        .collect();
    let hashes: Vec<u64> = decoded
        .iter()
        .map(|&i| {
            rows[i]
                .phash
                .as_deref()
                .and_then(Hash64::from_hex)
                .map_or(0, |h| h.0)
        })
        .collect();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    if !hashes.is_empty() {
        let index = MultiIndex::new(hashes, MultiIndex::chunks_for(decoded.len()));
        edges.extend(
            index
                .pairs_within(radius)
                .into_iter()
                .map(|(a, b, _)| (a, b)),
        );
    }
    let shas: Vec<&str> = decoded
        .iter()
        .map(|&i| rows[i].sha256.as_deref().unwrap_or(""))
        .collect();
    let mut by_sha: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (k, sha) in shas.iter().enumerate() {
        if !sha.is_empty() {
            by_sha.entry(sha).or_default().push(k as u32);
        }
    }
    for members in by_sha.values() {
        for w in members.windows(2) {
            edges.push((w[0], w[1]));
        }
    }
    let mut uf = dedup::UnionFind::new(decoded.len());
    for &(a, b) in &edges {
        uf.union(a, b);
    }
    let mut components: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for k in 0..decoded.len() as u32 {
        components.entry(uf.find(k)).or_default().push(k);
    }
    let candidate = |row: &Row| Candidate {
        id: row.id.clone(),
        pixels: row.metrics.as_ref().map_or(0, |m| m.area),
        published_at: row.published_at.as_deref().and_then(unix_seconds),
    };
    let mut multi = 0;
    for members in components.values() {
        let idx: Vec<usize> = members.iter().map(|&k| decoded[k as usize]).collect();
        if idx.len() > 1 {
            multi += 1;
        }
        let cands: Vec<Candidate> = idx.iter().map(|&i| candidate(&rows[i])).collect();
        let best_overall = dedup::best(&cands);
        let eligible: Vec<usize> = (0..idx.len())
            .filter(|&j| rows[idx[j]].drop.is_none())
            .collect();
        let keeper = {
            let el: Vec<Candidate> = eligible.iter().map(|&j| cands[j].clone()).collect();
            dedup::best(&el).map(|b| eligible[b])
        };
        let cluster_id = best_overall.map(|b| cands[b].id.clone());
        let size = i32::try_from(idx.len()).unwrap_or(i32::MAX);
        let captions: BTreeSet<String> = idx
            .iter()
            .filter(|&&i| {
                !matches!(
                    rows[i].drop,
                    Some((
                        DropReason::EmptyCaption
                            | DropReason::BoilerplateCaption
                            | DropReason::CaptionTooShort
                            | DropReason::CaptionTooLong
                            | DropReason::NonEnglish,
                        _
                    ))
                )
            })
            .map(|&i| rows[i].caption.clone())
            .collect();
        for (j, &i) in idx.iter().enumerate() {
            rows[i].dup_cluster_id = cluster_id.clone();
            rows[i].dup_cluster_size = Some(size);
            let Some(k) = keeper else { continue };
            if j == k {
                let own = rows[i].caption.clone();
                rows[i].other_captions = captions.iter().filter(|c| **c != own).cloned().collect();
            } else if rows[i].drop.is_none() {
                let keeper_row = idx[k];
                let exact = rows[i].sha256.is_some() && rows[i].sha256 == rows[keeper_row].sha256;
                let keeper_id = rows[keeper_row].id.clone();
                let reason = if exact {
                    DropReason::ExactDuplicate
                } else {
                    DropReason::NearDuplicate
                };
                let detail = if exact {
                    format!("same sha256 as {keeper_id}")
                } else {
                    let d = match (
                        rows[i].phash.as_deref().and_then(Hash64::from_hex),
                        rows[keeper_row].phash.as_deref().and_then(Hash64::from_hex),
                    ) {
                        (Some(a), Some(b)) => a.distance(b).to_string(),
                        _ => "?".to_owned(),
                    };
                    format!("pHash distance {d} to {keeper_id} (cluster radius {radius})")
                };
                rows[i].dup_of = Some(keeper_id);
                rows[i].drop = Some((reason, detail));
            }
        }
    }
    multi
}

/// What a pair takes from its article.
#[derive(Debug, Clone, Default)]
struct ArticleMeta {
    headline: Option<String>,
    published_at: Option<String>,
    section: Option<String>,
}

fn read_rows(ctx: &StepCtx) -> Result<Vec<Row>, Error> {
    // Articles: id → (headline, published_at, section).
    let mut article_meta: HashMap<String, ArticleMeta> = HashMap::new();
    let reader = ctx.reader(articles::NAME)?;
    let cols = [
        articles::ID,
        articles::HEADLINE,
        articles::PUBLISHED_AT,
        articles::SECTION,
    ];
    for batch in reader.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, articles::NAME);
        let (id, headline, published, section) = (
            c.utf8(articles::ID)?,
            c.utf8(articles::HEADLINE)?,
            c.utf8(articles::PUBLISHED_AT)?,
            c.utf8(articles::SECTION)?,
        );
        for r in 0..batch.num_rows() {
            article_meta.insert(
                id.value(r).to_owned(),
                ArticleMeta {
                    headline: opt_str(headline, r).map(str::to_owned),
                    published_at: opt_str(published, r).map(str::to_owned),
                    section: opt_str(section, r).map(str::to_owned),
                },
            );
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let reader = ctx.reader(pairs::NAME)?;
    let cols = [
        pairs::ID,
        pairs::ARTICLE_ID,
        pairs::OUTLET,
        pairs::SOURCE,
        pairs::ARTICLE_URL,
        pairs::IMAGE_URL,
        pairs::POSITION,
        pairs::IS_LEAD,
        pairs::CAPTION,
        pairs::CREDIT,
        pairs::ALT,
        pairs::SHA256,
    ];
    for batch in reader.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs::NAME);
        let id = c.utf8(pairs::ID)?;
        let article_id = c.utf8(pairs::ARTICLE_ID)?;
        let outlet = c.utf8(pairs::OUTLET)?;
        let source = c.utf8(pairs::SOURCE)?;
        let article_url = c.utf8(pairs::ARTICLE_URL)?;
        let image_url = c.utf8(pairs::IMAGE_URL)?;
        let position = c.int32(pairs::POSITION)?;
        let is_lead = c.boolean(pairs::IS_LEAD)?;
        let caption = c.utf8(pairs::CAPTION)?;
        let credit = c.utf8(pairs::CREDIT)?;
        let alt = c.utf8(pairs::ALT)?;
        let sha = c.utf8(pairs::SHA256)?;
        for r in 0..batch.num_rows() {
            let meta = article_meta
                .get(article_id.value(r))
                .cloned()
                .unwrap_or_default();
            let topic = Topic::of_article(article_url.value(r), meta.section.as_deref());
            rows.push(Row {
                id: id.value(r).to_owned(),
                article_id: article_id.value(r).to_owned(),
                outlet: outlet.value(r).to_owned(),
                source: source.value(r).to_owned(),
                article_url: article_url.value(r).to_owned(),
                image_url: image_url.value(r).to_owned(),
                headline: meta.headline,
                published_at: meta.published_at,
                topic,
                position: position.value(r),
                is_lead: is_lead.value(r),
                caption_raw: caption.value(r).to_owned(),
                credit: opt_str(credit, r).map(str::to_owned),
                alt: opt_str(alt, r).map(str::to_owned),
                sha256: opt_str(sha, r).map(str::to_owned),
                ..Row::default()
            });
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = rows.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(Error::Config(format!(
            "table pairs holds id {} twice; re-run `anchor scrape --force`",
            w[0].id
        )));
    }
    let position: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    let mut seen = vec![false; rows.len()];
    let reader = ctx.reader(pairs_scored::NAME)?;
    for batch in reader.read_all(None, 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_scored::NAME);
        let id = c.utf8(pairs_scored::ID)?;
        let err = c.utf8(pairs_scored::IMAGE_ERROR)?;
        let err_detail = c.utf8(pairs_scored::IMAGE_ERROR_DETAIL)?;
        let phash = c.utf8(pairs_scored::PHASH)?;
        let dhash = c.utf8(pairs_scored::DHASH)?;
        let width = c.int32(pairs_scored::WIDTH)?;
        let height = c.int32(pairs_scored::HEIGHT)?;
        let shortest = c.int32(pairs_scored::SHORTEST_SIDE)?;
        let area = c.int64(pairs_scored::AREA)?;
        let aspect = c.float64(pairs_scored::ASPECT_RATIO)?;
        let blur = c.float64(pairs_scored::BLUR)?;
        let entropy = c.float64(pairs_scored::ENTROPY)?;
        let dark = c.float64(pairs_scored::DARK)?;
        let light = c.float64(pairs_scored::LIGHT)?;
        let gray = c.boolean(pairs_scored::GRAYSCALE)?;
        let placeholder = c.boolean(pairs_scored::PLACEHOLDER)?;
        let file_size = c.int64(pairs_scored::FILE_SIZE)?;
        let nsfw = c.float64(pairs_scored::NSFW)?;
        let clip_sim = float32_column(&batch, pairs_scored::NAME, pairs_scored::CLIP_SIMILARITY)?;
        let clip_iqa = float32_column(&batch, pairs_scored::NAME, pairs_scored::CLIP_IQA)?;
        for r in 0..batch.num_rows() {
            let Some(&i) = position.get(id.value(r)) else {
                return Err(Error::Config(format!(
                    "pairs_scored has id {} that pairs does not; re-run `anchor curate --force`",
                    id.value(r)
                )));
            };
            seen[i] = true;
            let row = &mut rows[i];
            row.image_error = opt_str(err, r).map(|e| {
                (
                    e.to_owned(),
                    opt_str(err_detail, r).unwrap_or_default().to_owned(),
                )
            });
            row.phash = opt_str(phash, r).map(str::to_owned);
            row.dhash = opt_str(dhash, r).map(str::to_owned);
            row.nsfw = opt_f64(nsfw, r);
            row.clip_similarity = opt_f32(clip_sim, r);
            row.clip_iqa = opt_f32(clip_iqa, r);
            row.metrics = match (opt_i32(width, r), opt_i32(height, r)) {
                (Some(w), Some(h)) => Some(QualityMetrics {
                    width: u32::try_from(w).unwrap_or(0),
                    height: u32::try_from(h).unwrap_or(0),
                    shortest_side: opt_i32(shortest, r)
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(0),
                    area: opt_i64(area, r)
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(0),
                    aspect_ratio: opt_f64(aspect, r).unwrap_or(f64::INFINITY),
                    blur: opt_f64(blur, r).unwrap_or(0.0),
                    entropy: opt_f64(entropy, r).unwrap_or(0.0),
                    dark: opt_f64(dark, r).unwrap_or(0.0),
                    light: opt_f64(light, r).unwrap_or(0.0),
                    grayscale: opt_bool(gray, r).unwrap_or(false),
                    placeholder: opt_bool(placeholder, r).unwrap_or(false),
                    file_size: opt_i64(file_size, r)
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(0),
                }),
                _ => None,
            };
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(Error::Config(format!(
            "pairs_scored has no row for pair {}; re-run `anchor curate --force`",
            rows[i].id
        )));
    }
    Ok(rows)
}

fn curated_batch(rows: &[Row]) -> Result<RecordBatch, Error> {
    let mut b_id = StringBuilder::new();
    let mut b_article = StringBuilder::new();
    let mut b_outlet = StringBuilder::new();
    let mut b_source = StringBuilder::new();
    let mut b_article_url = StringBuilder::new();
    let mut b_image_url = StringBuilder::new();
    let mut b_headline = StringBuilder::new();
    let mut b_published = StringBuilder::new();
    let mut b_topic = StringBuilder::new();
    let mut b_position = Int32Builder::new();
    let mut b_lead = BooleanBuilder::new();
    let mut b_caption = StringBuilder::new();
    let mut b_caption_raw = StringBuilder::new();
    let mut b_credit = StringBuilder::new();
    let mut b_alt = StringBuilder::new();
    let mut b_language = StringBuilder::new();
    let mut b_language_conf = Float32Builder::new();
    let mut b_words = Int32Builder::new();
    let mut b_tokens = Int32Builder::new();
    let mut b_subset = StringBuilder::new();
    let mut b_sha = StringBuilder::new();
    let mut b_phash = StringBuilder::new();
    let mut b_dhash = StringBuilder::new();
    let mut b_width = Int32Builder::new();
    let mut b_height = Int32Builder::new();
    let mut b_shortest = Int32Builder::new();
    let mut b_area = Int64Builder::new();
    let mut b_aspect = Float64Builder::new();
    let mut b_blur = Float64Builder::new();
    let mut b_entropy = Float64Builder::new();
    let mut b_dark = Float64Builder::new();
    let mut b_light = Float64Builder::new();
    let mut b_gray = BooleanBuilder::new();
    let mut b_placeholder = BooleanBuilder::new();
    let mut b_file_size = Int64Builder::new();
    let mut b_nsfw = Float64Builder::new();
    let mut b_clip_sim = Float32Builder::new();
    let mut b_clip_iqa = Float32Builder::new();
    let mut b_cluster = StringBuilder::new();
    let mut b_cluster_size = Int32Builder::new();
    let mut b_dup_of = StringBuilder::new();
    let mut b_others = ListBuilder::new(StringBuilder::new());
    let mut b_kept = BooleanBuilder::new();
    let mut b_reason = StringBuilder::new();
    let mut b_detail = StringBuilder::new();
    for r in rows {
        b_id.append_value(&r.id);
        b_article.append_value(&r.article_id);
        b_outlet.append_value(&r.outlet);
        b_source.append_value(&r.source);
        b_article_url.append_value(&r.article_url);
        b_image_url.append_value(&r.image_url);
        b_headline.append_option(r.headline.as_deref());
        b_published.append_option(r.published_at.as_deref());
        b_topic.append_value(r.topic.as_str());
        b_position.append_value(r.position);
        b_lead.append_value(r.is_lead);
        b_caption.append_value(&r.caption);
        b_caption_raw.append_value(&r.caption_raw);
        b_credit.append_option(r.credit.as_deref());
        b_alt.append_option(r.alt.as_deref());
        b_language.append_option(r.language.as_deref());
        b_language_conf.append_option(r.language_confidence);
        b_words.append_value(r.words);
        b_tokens.append_value(r.tokens);
        b_subset.append_value(r.subset);
        b_sha.append_option(r.sha256.as_deref());
        b_phash.append_option(r.phash.as_deref());
        b_dhash.append_option(r.dhash.as_deref());
        let m = r.metrics.as_ref();
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        b_width.append_option(m.map(|m| to_i32(m.width)));
        b_height.append_option(m.map(|m| to_i32(m.height)));
        b_shortest.append_option(m.map(|m| to_i32(m.shortest_side)));
        b_area.append_option(m.map(|m| to_i64(m.area)));
        b_aspect.append_option(m.map(|m| m.aspect_ratio));
        b_blur.append_option(m.map(|m| m.blur));
        b_entropy.append_option(m.map(|m| m.entropy));
        b_dark.append_option(m.map(|m| m.dark));
        b_light.append_option(m.map(|m| m.light));
        b_gray.append_option(m.map(|m| m.grayscale));
        b_placeholder.append_option(m.map(|m| m.placeholder));
        b_file_size.append_option(m.map(|m| to_i64(m.file_size)));
        b_nsfw.append_option(r.nsfw);
        b_clip_sim.append_option(r.clip_similarity);
        b_clip_iqa.append_option(r.clip_iqa);
        b_cluster.append_option(r.dup_cluster_id.as_deref());
        b_cluster_size.append_option(r.dup_cluster_size);
        b_dup_of.append_option(r.dup_of.as_deref());
        for c in &r.other_captions {
            b_others.values().append_value(c);
        }
        b_others.append(true);
        b_kept.append_value(r.drop.is_none());
        b_reason.append_option(r.drop.as_ref().map(|(reason, _)| reason.as_str()));
        b_detail.append_option(r.drop.as_ref().map(|(_, d)| d.as_str()));
    }
    let others = b_others.finish();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(b_id.finish()),
        Arc::new(b_article.finish()),
        Arc::new(b_outlet.finish()),
        Arc::new(b_source.finish()),
        Arc::new(b_article_url.finish()),
        Arc::new(b_image_url.finish()),
        Arc::new(b_headline.finish()),
        Arc::new(b_published.finish()),
        Arc::new(b_topic.finish()),
        Arc::new(b_position.finish()),
        Arc::new(b_lead.finish()),
        Arc::new(b_caption.finish()),
        Arc::new(b_caption_raw.finish()),
        Arc::new(b_credit.finish()),
        Arc::new(b_alt.finish()),
        Arc::new(b_language.finish()),
        Arc::new(b_language_conf.finish()),
        Arc::new(b_words.finish()),
        Arc::new(b_tokens.finish()),
        Arc::new(b_subset.finish()),
        Arc::new(b_sha.finish()),
        Arc::new(b_phash.finish()),
        Arc::new(b_dhash.finish()),
        Arc::new(b_width.finish()),
        Arc::new(b_height.finish()),
        Arc::new(b_shortest.finish()),
        Arc::new(b_area.finish()),
        Arc::new(b_aspect.finish()),
        Arc::new(b_blur.finish()),
        Arc::new(b_entropy.finish()),
        Arc::new(b_dark.finish()),
        Arc::new(b_light.finish()),
        Arc::new(b_gray.finish()),
        Arc::new(b_placeholder.finish()),
        Arc::new(b_file_size.finish()),
        Arc::new(b_nsfw.finish()),
        Arc::new(b_clip_sim.finish()),
        Arc::new(b_clip_iqa.finish()),
        Arc::new(b_cluster.finish()),
        Arc::new(b_cluster_size.finish()),
        Arc::new(b_dup_of.finish()),
        Arc::new(others),
        Arc::new(b_kept.finish()),
        Arc::new(b_reason.finish()),
        Arc::new(b_detail.finish()),
    ];
    RecordBatch::try_new(pairs_curated::schema(), columns).map_err(Error::from)
}
