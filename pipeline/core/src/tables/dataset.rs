//! The published dataset's rows: `data/out/dataset/<subset>/<split>-NNNNN-of-MMMMM.parquet`,
//! the Hugging Face layout (not a part table: the `export` step writes these files itself).
//!
//! Written by `export`. Each file is sorted by `id`.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, image_type, utf8_list};

/// Table name.
pub const NAME: &str = "dataset";

/// pair id (`pairs.id`)
pub const ID: &str = "id";
/// Hugging Face `Image`: by default the entropy-based salient square, resized to 512 px (never upscaled), JPEG quality 90, path `<id>.jpg`; with `--original-images`, the original bytes and file name
pub const IMAGE: &str = "image";
/// cleaned caption
pub const CAPTION: &str = "caption";
/// photo credit (kept out of the caption; the images remain their publishers' copyright)
pub const CREDIT: &str = "credit";
/// `guardian`, `bbc`, `usatoday`, `washingtonpost` or `nytimes`
pub const OUTLET: &str = "outlet";
/// source that produced the pair (`demo`, `live`, `urls`, `warc`, ...)
pub const SOURCE: &str = "source";
/// canonical article URL
pub const ARTICLE_URL: &str = "article_url";
/// canonical image URL
pub const IMAGE_URL: &str = "image_url";
/// article headline
pub const HEADLINE: &str = "headline";
/// publication time (RFC 3339) as the page states it
pub const PUBLISHED_AT: &str = "published_at";
/// the article's topic (see `pairs_curated.topic`)
pub const TOPIC: &str = "topic";
/// `entity` or `non_entity` (the deterministic named-entity rule of `curate`)
pub const SUBSET: &str = "subset";
/// `train`, `val` or `test`
pub const SPLIT: &str = "split";
/// ISO 639-3 code of the caption's most likely language
pub const LANGUAGE: &str = "language";
/// the detector's confidence in `language`, 0–1
pub const LANGUAGE_CONFIDENCE: &str = "language_confidence";
/// CLIP BPE tokens of the caption (without start/end); SD sees at most 75
pub const CAPTION_TOKENS: &str = "caption_tokens";
/// width of `image`
pub const WIDTH: &str = "width";
/// height of `image`
pub const HEIGHT: &str = "height";
/// width of the original image
pub const ORIGINAL_WIDTH: &str = "original_width";
/// height of the original image
pub const ORIGINAL_HEIGHT: &str = "original_height";
/// left edge of the square crop in original pixels (null with `--original-images`)
pub const CROP_X: &str = "crop_x";
/// top edge of the square crop in original pixels
pub const CROP_Y: &str = "crop_y";
/// side of the square crop in original pixels
pub const CROP_SIDE: &str = "crop_side";
/// sha256 of the original bytes
pub const SHA256: &str = "sha256";
/// pHash of the original, 16 hex digits as `str(imagehash.phash(img))`
pub const PHASH: &str = "phash";
/// dHash of the original, as `str(imagehash.dhash(img))`
pub const DHASH: &str = "dhash";
/// near-duplicate cluster (id of its best member); no cluster spans two splits
pub const DUP_CLUSTER_ID: &str = "dup_cluster_id";
/// captions of the same photo elsewhere (other outlets' wire copies), sorted
pub const OTHER_CAPTIONS: &str = "other_captions";
/// size of the original bytes
pub const FILE_SIZE: &str = "file_size";
/// long / short side of the original
pub const ASPECT_RATIO: &str = "aspect_ratio";
/// variance of the Laplacian (higher is sharper)
pub const BLUR: &str = "blur";
/// grayscale entropy in bits
pub const ENTROPY: &str = "entropy";
/// cleanvision dark score
pub const DARK: &str = "dark";
/// cleanvision light score
pub const LIGHT: &str = "light";
/// open_nsfw score
pub const NSFW: &str = "nsfw";
/// CLIP cosine of the original image and the raw caption; null when curate ran without CLIP weights
pub const CLIP_SIMILARITY: &str = "clip_similarity";
/// CLIP-IQA "Good photo." probability of the original image; null when curate ran without CLIP weights
pub const CLIP_IQA: &str = "clip_iqa";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(IMAGE, image_type(), false),
                Field::new(CAPTION, DataType::Utf8, false),
                Field::new(CREDIT, DataType::Utf8, true),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(ARTICLE_URL, DataType::Utf8, false),
                Field::new(IMAGE_URL, DataType::Utf8, false),
                Field::new(HEADLINE, DataType::Utf8, true),
                Field::new(PUBLISHED_AT, DataType::Utf8, true),
                Field::new(TOPIC, DataType::Utf8, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(SPLIT, DataType::Utf8, false),
                Field::new(LANGUAGE, DataType::Utf8, true),
                Field::new(LANGUAGE_CONFIDENCE, DataType::Float32, true),
                Field::new(CAPTION_TOKENS, DataType::Int32, false),
                Field::new(WIDTH, DataType::Int32, false),
                Field::new(HEIGHT, DataType::Int32, false),
                Field::new(ORIGINAL_WIDTH, DataType::Int32, false),
                Field::new(ORIGINAL_HEIGHT, DataType::Int32, false),
                Field::new(CROP_X, DataType::Int32, true),
                Field::new(CROP_Y, DataType::Int32, true),
                Field::new(CROP_SIDE, DataType::Int32, true),
                Field::new(SHA256, DataType::Utf8, false),
                Field::new(PHASH, DataType::Utf8, false),
                Field::new(DHASH, DataType::Utf8, false),
                Field::new(DUP_CLUSTER_ID, DataType::Utf8, false),
                Field::new(OTHER_CAPTIONS, utf8_list(), false),
                Field::new(FILE_SIZE, DataType::Int64, false),
                Field::new(ASPECT_RATIO, DataType::Float64, false),
                Field::new(BLUR, DataType::Float64, false),
                Field::new(ENTROPY, DataType::Float64, false),
                Field::new(DARK, DataType::Float64, false),
                Field::new(LIGHT, DataType::Float64, false),
                Field::new(NSFW, DataType::Float64, false),
                Field::new(CLIP_SIMILARITY, DataType::Float32, true),
                Field::new(CLIP_IQA, DataType::Float32, true),
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 100,
};
