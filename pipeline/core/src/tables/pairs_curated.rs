//! Table `pairs_curated`: every `pairs` row, kept or dropped with a reason, with its
//! measurements, duplicate cluster and cleaned caption (no image bytes).
//!
//! Written by `curate`, read by `split`, `export`, `card` and `annotate`. Sorted by `id`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use arrow_array::Array;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, utf8_list};
use crate::columns::Columns;
use crate::error::{Error, Result};
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "pairs_curated";

/// `pairs.id`
pub const ID: &str = "id";
/// `articles.id`
pub const ARTICLE_ID: &str = "article_id";
/// outlet name
pub const OUTLET: &str = "outlet";
/// source that produced the pair
pub const SOURCE: &str = "source";
/// canonical article URL
pub const ARTICLE_URL: &str = "article_url";
/// canonical image URL
pub const IMAGE_URL: &str = "image_url";
/// the article's headline
pub const HEADLINE: &str = "headline";
/// the article's publication time (RFC 3339), as the page states it
pub const PUBLISHED_AT: &str = "published_at";
/// the article's topic, from its URL and section (`anchor_text::Topic`: `politics`, `world`, `national`, `business`, `technology`, `science`, `health`, `environment`, `sport`, `culture`, `lifestyle`, `opinion` or `other`)
pub const TOPIC: &str = "topic";
/// 0-based position of the image in the article
pub const POSITION: &str = "position";
/// whether the image is the article's lead image
pub const IS_LEAD: &str = "is_lead";
/// cleaned caption (NFC, whitespace, credit removed)
pub const CAPTION: &str = "caption";
/// the caption as `pairs` has it
pub const CAPTION_RAW: &str = "caption_raw";
/// photo credit
pub const CREDIT: &str = "credit";
/// alt text
pub const ALT: &str = "alt";
/// ISO 639-3 code of the caption's most likely language (lingua for Latin script, whatlang for other scripts); null only for a caption without letters
pub const LANGUAGE: &str = "language";
/// the detector's confidence in `language`, 0–1; `non_english` drops a language outside the accepted ones at ≥ 0.6
pub const LANGUAGE_CONFIDENCE: &str = "language_confidence";
/// words in `caption`
pub const CAPTION_WORDS: &str = "caption_words";
/// CLIP BPE tokens of `caption` (without start/end)
pub const CAPTION_TOKENS: &str = "caption_tokens";
/// `entity` or `non_entity`
pub const SUBSET: &str = "subset";
/// sha256 of the original bytes
pub const SHA256: &str = "sha256";
/// pHash, 16 hex digits as imagehash prints it
pub const PHASH: &str = "phash";
/// dHash, 16 hex digits as imagehash prints it
pub const DHASH: &str = "dhash";
/// decoded width
pub const WIDTH: &str = "width";
/// decoded height
pub const HEIGHT: &str = "height";
/// min(width, height); filter `min_shortest_side`
pub const SHORTEST_SIDE: &str = "shortest_side";
/// width × height
pub const AREA: &str = "area";
/// long / short side; filter `max_aspect_ratio`
pub const ASPECT_RATIO: &str = "aspect_ratio";
/// Laplacian variance; filter `min_blur`
pub const BLUR: &str = "blur";
/// grayscale entropy in bits; filter `min_entropy`
pub const ENTROPY: &str = "entropy";
/// cleanvision dark score; filter `min_dark`
pub const DARK: &str = "dark";
/// cleanvision light score; filter `min_light`
pub const LIGHT: &str = "light";
/// grayscale stored as RGB; filter `drop_grayscale`
pub const GRAYSCALE: &str = "grayscale";
/// placeholder or tracking pixel (always dropped)
pub const PLACEHOLDER: &str = "placeholder";
/// original bytes
pub const FILE_SIZE: &str = "file_size";
/// open_nsfw score; filter `max_nsfw` (drop at ≥)
pub const NSFW: &str = "nsfw";
/// CLIP image–caption cosine (`pairs_scored.clip_similarity`, raw caption); filter `min_clip_similarity`; null without CLIP weights
pub const CLIP_SIMILARITY: &str = "clip_similarity";
/// CLIP-IQA "Good photo." probability (`pairs_scored.clip_iqa`); filter `min_clip_iqa`; null without CLIP weights
pub const CLIP_IQA: &str = "clip_iqa";
/// id of the cluster's keeper, for every decoded pair (a singleton is its own cluster)
pub const DUP_CLUSTER_ID: &str = "dup_cluster_id";
/// pairs in the cluster
pub const DUP_CLUSTER_SIZE: &str = "dup_cluster_size";
/// for a duplicate: the id of the kept pair it duplicates
pub const DUP_OF: &str = "dup_of";
/// for a kept pair: the distinct cleaned captions of the other pairs in its cluster (wire photos across outlets), sorted
pub const OTHER_CAPTIONS: &str = "other_captions";
/// whether the pair is in the dataset
pub const KEPT: &str = "kept";
/// the first filter failed, in funnel order (`DropReason::ALL`); null when kept
pub const DROP_REASON: &str = "drop_reason";
/// the measured value and threshold, or the error, behind `drop_reason`
pub const DROP_DETAIL: &str = "drop_detail";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(ARTICLE_ID, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(ARTICLE_URL, DataType::Utf8, false),
                Field::new(IMAGE_URL, DataType::Utf8, false),
                Field::new(HEADLINE, DataType::Utf8, true),
                Field::new(PUBLISHED_AT, DataType::Utf8, true),
                Field::new(TOPIC, DataType::Utf8, false),
                Field::new(POSITION, DataType::Int32, false),
                Field::new(IS_LEAD, DataType::Boolean, false),
                Field::new(CAPTION, DataType::Utf8, false),
                Field::new(CAPTION_RAW, DataType::Utf8, false),
                Field::new(CREDIT, DataType::Utf8, true),
                Field::new(ALT, DataType::Utf8, true),
                Field::new(LANGUAGE, DataType::Utf8, true),
                Field::new(LANGUAGE_CONFIDENCE, DataType::Float32, true),
                Field::new(CAPTION_WORDS, DataType::Int32, false),
                Field::new(CAPTION_TOKENS, DataType::Int32, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(SHA256, DataType::Utf8, true),
                Field::new(PHASH, DataType::Utf8, true),
                Field::new(DHASH, DataType::Utf8, true),
                Field::new(WIDTH, DataType::Int32, true),
                Field::new(HEIGHT, DataType::Int32, true),
                Field::new(SHORTEST_SIDE, DataType::Int32, true),
                Field::new(AREA, DataType::Int64, true),
                Field::new(ASPECT_RATIO, DataType::Float64, true),
                Field::new(BLUR, DataType::Float64, true),
                Field::new(ENTROPY, DataType::Float64, true),
                Field::new(DARK, DataType::Float64, true),
                Field::new(LIGHT, DataType::Float64, true),
                Field::new(GRAYSCALE, DataType::Boolean, true),
                Field::new(PLACEHOLDER, DataType::Boolean, true),
                Field::new(FILE_SIZE, DataType::Int64, true),
                Field::new(NSFW, DataType::Float64, true),
                Field::new(CLIP_SIMILARITY, DataType::Float32, true),
                Field::new(CLIP_IQA, DataType::Float32, true),
                Field::new(DUP_CLUSTER_ID, DataType::Utf8, true),
                Field::new(DUP_CLUSTER_SIZE, DataType::Int32, true),
                Field::new(DUP_OF, DataType::Utf8, true),
                Field::new(OTHER_CAPTIONS, utf8_list(), false),
                Field::new(KEPT, DataType::Boolean, false),
                Field::new(DROP_REASON, DataType::Utf8, true),
                Field::new(DROP_DETAIL, DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 8192,
};

/// What the steps after `split` read of a kept pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPair {
    /// Pair id.
    pub id: String,
    /// The cleaned caption.
    pub caption: String,
    /// `subset` (`SUBSETS`).
    pub subset: String,
    /// Outlet key.
    pub outlet: String,
    /// The article's topic (`anchor_text::Topic` names).
    pub topic: String,
}

/// The kept pairs `ids` (typically a split's, from `splits::ids_in_split`), by id. Reads
/// five columns besides `kept`. An id without a row, or whose row is not kept, is an
/// error: a split holds only kept pairs, so either means the tables are out of step.
pub fn kept_pairs(
    reader: &TableReader,
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, KeptPair>> {
    let pairs = scan_kept(reader, Some(ids))?;
    if let Some(missing) = ids.iter().find(|id| !pairs.contains_key(*id)) {
        return Err(Error::Row {
            table: NAME.to_owned(),
            id: missing.clone(),
            detail: "the pair is in a split but has no row".to_owned(),
        });
    }
    Ok(pairs)
}

/// Every kept pair, by id (the rows a step after curate works on). An id on two rows is an
/// error.
pub fn all_kept(reader: &TableReader) -> Result<BTreeMap<String, KeptPair>> {
    scan_kept(reader, None)
}

/// The kept rows among `only` (every row when `None`); a row of `only` that is not kept is
/// an error.
fn scan_kept(
    reader: &TableReader,
    only: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, KeptPair>> {
    let mut pairs = BTreeMap::new();
    let cols = [ID, CAPTION, SUBSET, OUTLET, TOPIC, KEPT];
    for batch in reader.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, NAME);
        let (id, caption) = (c.strings(ID)?, c.strings(CAPTION)?);
        let (subset, outlet) = (c.strings(SUBSET)?, c.strings(OUTLET)?);
        let topic = c.strings(TOPIC)?;
        let kept = c.boolean(KEPT)?;
        for i in 0..batch.num_rows() {
            let pair_id = c.required(ID, i, id.get(i))?;
            let is_kept = kept.is_valid(i) && kept.value(i);
            match only {
                Some(ids) if !ids.contains(pair_id) => continue,
                Some(_) if !is_kept => {
                    return Err(Error::Row {
                        table: NAME.to_owned(),
                        id: pair_id.to_owned(),
                        detail: "the pair is in a split but is not kept".to_owned(),
                    });
                }
                None if !is_kept => continue,
                _ => {}
            }
            let pair = KeptPair {
                id: pair_id.to_owned(),
                caption: c.required(CAPTION, i, caption.get(i))?.to_owned(),
                subset: c.required(SUBSET, i, subset.get(i))?.to_owned(),
                outlet: c.required(OUTLET, i, outlet.get(i))?.to_owned(),
                topic: c.required(TOPIC, i, topic.get(i))?.to_owned(),
            };
            if pairs.insert(pair_id.to_owned(), pair).is_some() {
                return Err(Error::Row {
                    table: NAME.to_owned(),
                    id: pair_id.to_owned(),
                    detail: "the id is on two kept rows".to_owned(),
                });
            }
        }
    }
    Ok(pairs)
}
