//! Table `pairs`: one row per captioned image found in an article, with the
//! image's original bytes.
//!
//! Written by `scrape`, read by `curate`. Rows are sorted by `id`. Failed
//! downloads stay as rows (`status`, `error_class`), as img2dataset does.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, image_type};

/// Table name.
pub const NAME: &str = "pairs";

/// Pair id: first 16 hex digits of sha256(article URL + "\n" + image URL).
pub const ID: &str = "id";
/// The article's id.
pub const ARTICLE_ID: &str = "article_id";
/// Outlet name.
pub const OUTLET: &str = "outlet";
/// Source that produced the row.
pub const SOURCE: &str = "source";
/// Canonical article URL.
pub const ARTICLE_URL: &str = "article_url";
/// Canonical image URL (the largest rendition).
pub const IMAGE_URL: &str = "image_url";
/// 0-based position of the image in the article.
pub const POSITION: &str = "position";
/// Whether the image is the article's lead image.
pub const IS_LEAD: &str = "is_lead";
/// Caption as found on the page (credit removed).
pub const CAPTION: &str = "caption";
/// Photo credit, split out of the caption.
pub const CREDIT: &str = "credit";
/// Alt text.
pub const ALT: &str = "alt";
/// The image: Hugging Face `Image` struct with the original bytes.
pub const IMAGE: &str = "image";
/// sha256 of the original bytes.
pub const SHA256: &str = "sha256";
/// Size of the original bytes.
pub const BYTE_SIZE: &str = "byte_size";
/// Decoded width in pixels.
pub const WIDTH: &str = "width";
/// Decoded height in pixels.
pub const HEIGHT: &str = "height";
/// Response Content-Type.
pub const CONTENT_TYPE: &str = "content_type";
/// Final status: `success` or `failed_*`.
pub const STATUS: &str = "status";
/// Stable snake_case class of the failure.
pub const ERROR_CLASS: &str = "error_class";
/// Human-readable failure detail.
pub const ERROR_MESSAGE: &str = "error_message";
/// Final HTTP status code.
pub const HTTP_STATUS: &str = "http_status";
/// Number of requests made for the image.
pub const ATTEMPTS: &str = "attempts";

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
                Field::new(POSITION, DataType::Int32, false),
                Field::new(IS_LEAD, DataType::Boolean, false),
                Field::new(CAPTION, DataType::Utf8, false),
                Field::new(CREDIT, DataType::Utf8, true),
                Field::new(ALT, DataType::Utf8, true),
                Field::new(IMAGE, image_type(), true),
                Field::new(SHA256, DataType::Utf8, true),
                Field::new(BYTE_SIZE, DataType::Int64, true),
                Field::new(WIDTH, DataType::Int32, true),
                Field::new(HEIGHT, DataType::Int32, true),
                Field::new(CONTENT_TYPE, DataType::Utf8, true),
                Field::new(STATUS, DataType::Utf8, false),
                Field::new(ERROR_CLASS, DataType::Utf8, true),
                Field::new(ERROR_MESSAGE, DataType::Utf8, true),
                Field::new(HTTP_STATUS, DataType::Int32, true),
                Field::new(ATTEMPTS, DataType::Int32, false),
            ]))
        })
        .clone()
}

/// The table's declaration. Row groups are small because each row carries an
/// image (Hugging Face uses 100 rows per group for image datasets).
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 128,
};
