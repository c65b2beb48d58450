//! Table `demo_truth`: the demo site's ground truth, one row per URL served
//! on purpose, with the fault it carries and how it must end.
//!
//! Written by `scrape --source demo`; read by tests and by `curate` for
//! calibration. Rows are sorted by `url`.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TableDef;

/// Table name.
pub const NAME: &str = "demo_truth";
/// Article URL as listed, or canonical image URL.
pub const URL: &str = "url";
/// `article` or `image`.
pub const KIND: &str = "kind";
/// Outlet name.
pub const OUTLET: &str = "outlet";
/// For images, the canonical article URL.
pub const ARTICLE_URL: &str = "article_url";
/// The intended fault (`none` for clean URLs).
pub const FAULT: &str = "fault";
/// `scrape`, `extract` or `curate`.
pub const STAGE: &str = "stage";
/// Expected scrape status (`absent`: no row).
pub const EXPECTED_STATUS: &str = "expected_status";
/// Expected scrape error class.
pub const EXPECTED_ERROR_CLASS: &str = "expected_error_class";
/// Expected drop reason in a later stage.
pub const EXPECTED_DROP_REASON: &str = "expected_drop_reason";
/// For near-duplicates, the image URL it derives from.
pub const DERIVED_FROM: &str = "derived_from";
/// For near-duplicates, `crop`, `rescale`, `reencode` or `wire_copy`.
pub const DERIVATION: &str = "derivation";
/// Base photo name.
pub const PHOTO: &str = "photo";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(URL, DataType::Utf8, false),
                Field::new(KIND, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(ARTICLE_URL, DataType::Utf8, true),
                Field::new(FAULT, DataType::Utf8, false),
                Field::new(STAGE, DataType::Utf8, false),
                Field::new(EXPECTED_STATUS, DataType::Utf8, false),
                Field::new(EXPECTED_ERROR_CLASS, DataType::Utf8, true),
                Field::new(EXPECTED_DROP_REASON, DataType::Utf8, true),
                Field::new(DERIVED_FROM, DataType::Utf8, true),
                Field::new(DERIVATION, DataType::Utf8, true),
                Field::new(PHOTO, DataType::Utf8, true),
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
