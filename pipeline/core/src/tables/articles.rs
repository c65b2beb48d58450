//! Table `articles`: one row per article page the scrape step visited.
//!
//! Written by `scrape`. Rows are sorted by `id`. A page that could not be
//! fetched or parsed is still a row, with `status` and `error_class` saying why.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, utf8_list};

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
