//! Table `demo_truth`: for every demo URL, the intended fault and how it must
//! end. Tests and `curate`'s calibration compare outcomes with it.
//!
//! The schema mirrors `pipeline/core/src/tables/demo_truth.rs` and
//! `schemas/demo_truth.md`.

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::site::TruthRow;
use crate::error::{Error, Result};

/// Table name.
pub const NAME: &str = "demo_truth";

/// The columns, in order: (name, nullable).
pub const COLUMNS: &[(&str, bool)] = &[
    ("url", false),
    ("kind", false),
    ("outlet", false),
    ("article_url", true),
    ("fault", false),
    ("stage", false),
    ("expected_status", false),
    ("expected_error_class", true),
    ("expected_drop_reason", true),
    ("derived_from", true),
    ("derivation", true),
    ("photo", true),
];

/// The declared schema (all Utf8).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(
                COLUMNS
                    .iter()
                    .map(|(n, nullable)| Field::new(*n, DataType::Utf8, *nullable))
                    .collect::<Vec<_>>(),
            ))
        })
        .clone()
}

/// Rows to a record batch (rows arrive sorted by URL).
pub fn to_batch(rows: &[TruthRow]) -> Result<RecordBatch> {
    let col = |f: &dyn Fn(&TruthRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        col(&|r| Some(r.url.clone())),
        col(&|r| Some(r.kind.to_owned())),
        col(&|r| Some(r.outlet.as_str().to_owned())),
        col(&|r| r.article_url.clone()),
        col(&|r| Some(r.fault.to_owned())),
        col(&|r| Some(r.expected.stage.to_owned())),
        col(&|r| Some(r.expected.status.to_owned())),
        col(&|r| r.expected.error_class.map(str::to_owned)),
        col(&|r| r.expected.drop_reason.map(str::to_owned)),
        col(&|r| r.derived_from.clone()),
        col(&|r| r.derivation.map(str::to_owned)),
        col(&|r| r.photo.clone()),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::Table {
        table: NAME.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_its_doc() {
        let doc =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/demo_truth.md");
        let text = std::fs::read_to_string(&doc).unwrap();
        anchor_core::tables::doc::check(&schema(), &text).unwrap();
    }

    #[test]
    fn batch_has_one_row_per_truth_row() {
        let plan = crate::demo::SitePlan::new(12);
        let rows = plan.truth(&|i| format!("p{i}"));
        let batch = to_batch(&rows).unwrap();
        assert_eq!(batch.num_rows(), rows.len());
        assert_eq!(batch.schema(), schema());
    }
}
