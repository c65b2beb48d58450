//! Table `articles`: one row per article page the scrape step visited.
//!
//! Written by `scrape`. Rows are sorted by `id`. A page that could not be
//! fetched or parsed is still a row, with `status` and `error_class` saying why.

use std::sync::{Arc, OnceLock};

use arrow_array::{Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, opt_strs, str_lists, strs, utf8_list};
use crate::columns::{Columns, opt_i32};
use crate::error::Result;

/// Table name.
pub const NAME: &str = "articles";

/// Article id: first 16 hex digits of sha256(canonical URL).
pub const ID: &str = "id";
/// Outlet name (`Outlet::as_str`).
pub const OUTLET: &str = "outlet";
/// Which source produced the row (`demo`, `live`, `urls`, `warc`, ...).
pub const SOURCE: &str = "source";
/// URL requested.
pub const URL: &str = "url";
/// Canonical URL (from the page, else the final URL after redirects).
pub const CANONICAL_URL: &str = "canonical_url";
/// Headline.
pub const HEADLINE: &str = "headline";
/// Publication time as RFC 3339, as the page states it.
pub const PUBLISHED_AT: &str = "published_at";
/// Section or topic.
pub const SECTION: &str = "section";
/// Authors.
pub const AUTHORS: &str = "authors";
/// Which adapter (and layout) parsed the page.
pub const ADAPTER: &str = "adapter";
/// Captioned images found on the page.
pub const N_IMAGES: &str = "n_images";
/// Final status: `success` or `failed_*`.
pub const STATUS: &str = "status";
/// Stable snake_case class of the failure.
pub const ERROR_CLASS: &str = "error_class";
/// Human-readable failure detail.
pub const ERROR_MESSAGE: &str = "error_message";
/// Final HTTP status code.
pub const HTTP_STATUS: &str = "http_status";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(URL, DataType::Utf8, false),
                Field::new(CANONICAL_URL, DataType::Utf8, false),
                Field::new(HEADLINE, DataType::Utf8, true),
                Field::new(PUBLISHED_AT, DataType::Utf8, true),
                Field::new(SECTION, DataType::Utf8, true),
                Field::new(AUTHORS, utf8_list(), false),
                Field::new(ADAPTER, DataType::Utf8, true),
                Field::new(N_IMAGES, DataType::Int32, false),
                Field::new(STATUS, DataType::Utf8, false),
                Field::new(ERROR_CLASS, DataType::Utf8, true),
                Field::new(ERROR_MESSAGE, DataType::Utf8, true),
                Field::new(HTTP_STATUS, DataType::Int32, true),
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

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Article id.
    pub id: String,
    /// Outlet name.
    pub outlet: String,
    /// Source name.
    pub source: String,
    /// URL requested.
    pub url: String,
    /// Canonical URL.
    pub canonical_url: String,
    /// Headline.
    pub headline: Option<String>,
    /// Publication time.
    pub published_at: Option<String>,
    /// Section.
    pub section: Option<String>,
    /// Authors.
    pub authors: Vec<String>,
    /// Adapter that parsed the page.
    pub adapter: Option<String>,
    /// Captioned images found.
    pub n_images: i32,
    /// Final status.
    pub status: String,
    /// Error class.
    pub error_class: Option<String>,
    /// Error detail.
    pub error_message: Option<String>,
    /// HTTP status.
    pub http_status: Option<i32>,
}

/// Rows to a batch of the declared schema.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.id.as_str())),
            strs(rows.iter().map(|r| r.outlet.as_str())),
            strs(rows.iter().map(|r| r.source.as_str())),
            strs(rows.iter().map(|r| r.url.as_str())),
            strs(rows.iter().map(|r| r.canonical_url.as_str())),
            opt_strs(rows.iter().map(|r| r.headline.as_deref())),
            opt_strs(rows.iter().map(|r| r.published_at.as_deref())),
            opt_strs(rows.iter().map(|r| r.section.as_deref())),
            str_lists(rows.iter().map(|r| r.authors.as_slice())),
            opt_strs(rows.iter().map(|r| r.adapter.as_deref())),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.n_images),
            )),
            strs(rows.iter().map(|r| r.status.as_str())),
            opt_strs(rows.iter().map(|r| r.error_class.as_deref())),
            opt_strs(rows.iter().map(|r| r.error_message.as_deref())),
            Arc::new(rows.iter().map(|r| r.http_status).collect::<Int32Array>()),
        ],
    )
}

/// Rows of a batch (any string layout); a null in a non-null column is an error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (id, outlet, source, url) = (
        c.strings(ID)?,
        c.strings(OUTLET)?,
        c.strings(SOURCE)?,
        c.strings(URL)?,
    );
    let (canonical, headline, published, section) = (
        c.strings(CANONICAL_URL)?,
        c.strings(HEADLINE)?,
        c.strings(PUBLISHED_AT)?,
        c.strings(SECTION)?,
    );
    let (authors, adapter, n_images, status) = (
        c.string_lists(AUTHORS)?,
        c.strings(ADAPTER)?,
        c.int32(N_IMAGES)?,
        c.strings(STATUS)?,
    );
    let (class, message, http) = (
        c.strings(ERROR_CLASS)?,
        c.strings(ERROR_MESSAGE)?,
        c.int32(HTTP_STATUS)?,
    );
    (0..b.num_rows())
        .map(|i| {
            let s = |col: &str, v: &crate::columns::Strings<'_>| {
                c.required(col, i, v.get(i)).map(str::to_owned)
            };
            let o = |v: &crate::columns::Strings<'_>| v.get(i).map(str::to_owned);
            Ok(Row {
                id: s(ID, &id)?,
                outlet: s(OUTLET, &outlet)?,
                source: s(SOURCE, &source)?,
                url: s(URL, &url)?,
                canonical_url: s(CANONICAL_URL, &canonical)?,
                headline: o(&headline),
                published_at: o(&published),
                section: o(&section),
                authors: authors.get(i),
                adapter: o(&adapter),
                n_images: c.required(N_IMAGES, i, opt_i32(n_images, i))?,
                status: s(STATUS, &status)?,
                error_class: o(&class),
                error_message: o(&message),
                http_status: opt_i32(http, i),
            })
        })
        .collect()
}
