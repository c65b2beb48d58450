//! Table `pairs`: one row per captioned image found in an article, with the
//! image's original bytes.
//!
//! Written by `scrape`, read by `curate`. Rows are sorted by `id`. Failed
//! downloads stay as rows (`status`, `error_class`), as img2dataset does.

use std::sync::{Arc, OnceLock};

use arrow_array::{BooleanArray, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, image_array, image_type, opt_strs, strs};
use crate::columns::{Columns, opt_bool, opt_i32};
use crate::error::Result;

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

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Pair id.
    pub id: String,
    /// Article id.
    pub article_id: String,
    /// Outlet name.
    pub outlet: String,
    /// Source name.
    pub source: String,
    /// Canonical article URL.
    pub article_url: String,
    /// Canonical image URL.
    pub image_url: String,
    /// Position in the article.
    pub position: i32,
    /// Lead image flag.
    pub is_lead: bool,
    /// Caption.
    pub caption: String,
    /// Credit.
    pub credit: Option<String>,
    /// Alt text.
    pub alt: Option<String>,
    /// Original bytes (success only); [`BYTE_SIZE`] is their length.
    pub bytes: Option<Vec<u8>>,
    /// sha256 of the bytes.
    pub sha256: Option<String>,
    /// Width.
    pub width: Option<i32>,
    /// Height.
    pub height: Option<i32>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Final status.
    pub status: String,
    /// Error class.
    pub error_class: Option<String>,
    /// Error detail.
    pub error_message: Option<String>,
    /// HTTP status.
    pub http_status: Option<i32>,
    /// Requests made.
    pub attempts: i32,
}

/// Rows to a batch of the declared schema (the image struct is null without bytes; its
/// `path` is null).
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.id.as_str())),
            strs(rows.iter().map(|r| r.article_id.as_str())),
            strs(rows.iter().map(|r| r.outlet.as_str())),
            strs(rows.iter().map(|r| r.source.as_str())),
            strs(rows.iter().map(|r| r.article_url.as_str())),
            strs(rows.iter().map(|r| r.image_url.as_str())),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.position),
            )),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.is_lead))
                    .collect::<BooleanArray>(),
            ),
            strs(rows.iter().map(|r| r.caption.as_str())),
            opt_strs(rows.iter().map(|r| r.credit.as_deref())),
            opt_strs(rows.iter().map(|r| r.alt.as_deref())),
            image_array(NAME, rows.iter().map(|r| (r.bytes.as_deref(), None)))?,
            opt_strs(rows.iter().map(|r| r.sha256.as_deref())),
            Arc::new(
                rows.iter()
                    .map(|r| r.bytes.as_ref().map(|b| b.len() as i64))
                    .collect::<Int64Array>(),
            ),
            Arc::new(rows.iter().map(|r| r.width).collect::<Int32Array>()),
            Arc::new(rows.iter().map(|r| r.height).collect::<Int32Array>()),
            opt_strs(rows.iter().map(|r| r.content_type.as_deref())),
            strs(rows.iter().map(|r| r.status.as_str())),
            opt_strs(rows.iter().map(|r| r.error_class.as_deref())),
            opt_strs(rows.iter().map(|r| r.error_message.as_deref())),
            Arc::new(rows.iter().map(|r| r.http_status).collect::<Int32Array>()),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.attempts),
            )),
        ],
    )
}

/// Rows of a batch (any string and binary layout); a null in a non-null column is an error
/// naming it. This copies the images: readers that stream many images use
/// [`crate::columns::Columns::image`] on the batch instead.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (id, article_id, outlet, source) = (
        c.strings(ID)?,
        c.strings(ARTICLE_ID)?,
        c.strings(OUTLET)?,
        c.strings(SOURCE)?,
    );
    let (article_url, image_url, position, is_lead) = (
        c.strings(ARTICLE_URL)?,
        c.strings(IMAGE_URL)?,
        c.int32(POSITION)?,
        c.boolean(IS_LEAD)?,
    );
    let (caption, credit, alt, image) = (
        c.strings(CAPTION)?,
        c.strings(CREDIT)?,
        c.strings(ALT)?,
        c.image(IMAGE)?,
    );
    let (sha256, width, height, content_type) = (
        c.strings(SHA256)?,
        c.int32(WIDTH)?,
        c.int32(HEIGHT)?,
        c.strings(CONTENT_TYPE)?,
    );
    let (status, class, message) = (
        c.strings(STATUS)?,
        c.strings(ERROR_CLASS)?,
        c.strings(ERROR_MESSAGE)?,
    );
    let (http, attempts) = (c.int32(HTTP_STATUS)?, c.int32(ATTEMPTS)?);
    (0..b.num_rows())
        .map(|i| {
            let s = |col: &str, v: &crate::columns::Strings<'_>| {
                c.required(col, i, v.get(i)).map(str::to_owned)
            };
            let o = |v: &crate::columns::Strings<'_>| v.get(i).map(str::to_owned);
            Ok(Row {
                id: s(ID, &id)?,
                article_id: s(ARTICLE_ID, &article_id)?,
                outlet: s(OUTLET, &outlet)?,
                source: s(SOURCE, &source)?,
                article_url: s(ARTICLE_URL, &article_url)?,
                image_url: s(IMAGE_URL, &image_url)?,
                position: c.required(POSITION, i, opt_i32(position, i))?,
                is_lead: c.required(IS_LEAD, i, opt_bool(is_lead, i))?,
                caption: s(CAPTION, &caption)?,
                credit: o(&credit),
                alt: o(&alt),
                bytes: image.bytes(i).map(<[u8]>::to_vec),
                sha256: o(&sha256),
                width: opt_i32(width, i),
                height: opt_i32(height, i),
                content_type: o(&content_type),
                status: s(STATUS, &status)?,
                error_class: o(&class),
                error_message: o(&message),
                http_status: opt_i32(http, i),
                attempts: c.required(ATTEMPTS, i, opt_i32(attempts, i))?,
            })
        })
        .collect()
}
