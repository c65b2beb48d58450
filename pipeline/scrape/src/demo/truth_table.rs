//! Table `demo_truth`: for every demo URL, the intended fault and how it must
//! end. Tests and `curate`'s calibration compare outcomes with it.
//!
//! The schema is `anchor_core::tables::demo_truth`'s (documented in
//! `schemas/demo_truth.md`); this module only fills it from the demo plan.

use std::sync::Arc;

use anchor_core::tables::demo_truth::{NAME, schema};
use arrow_array::{ArrayRef, RecordBatch, StringArray};

use super::site::TruthRow;
use crate::error::{Error, Result};

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
    fn batch_has_one_row_per_truth_row() {
        let plan = crate::demo::SitePlan::new(12);
        let rows = plan.truth(&|i| format!("p{i}"));
        let batch = to_batch(&rows).unwrap();
        assert_eq!(batch.num_rows(), rows.len());
        assert_eq!(batch.schema(), schema());
    }
}
