//! Table `metrics`: evaluation results, one row per (configuration, metric, subset, outlet).
//!
//! Written by `eval`. Sorted by (`configuration`, `metric`, `subset`, `outlet`).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TableDef;

/// Table name.
pub const NAME: &str = "metrics";

/// `base`, `weighting`, `lora`, `lora+weighting`, `safe` or `prefix`
pub const CONFIGURATION: &str = "configuration";
/// `fid`, `fid_clip`, `kid`, `clip_score`, `subject_similarity`, `subject_hit_rate`, ...
pub const METRIC: &str = "metric";
/// `all`, `entity` or `non_entity`
pub const SUBSET: &str = "subset";
/// `all` or an outlet name
pub const OUTLET: &str = "outlet";
/// the metric's value
pub const VALUE: &str = "value";
/// standard deviation where the metric has one (KID over subsets, CLIP score over images)
pub const STD: &str = "std";
/// generated images scored
pub const N_GENERATED: &str = "n_generated";
/// real reference images (0 for reference-free metrics)
pub const N_REFERENCE: &str = "n_reference";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(CONFIGURATION, DataType::Utf8, false),
                Field::new(METRIC, DataType::Utf8, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(VALUE, DataType::Float64, false),
                Field::new(STD, DataType::Float64, true),
                Field::new(N_GENERATED, DataType::Int64, false),
                Field::new(N_REFERENCE, DataType::Int64, false),
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
