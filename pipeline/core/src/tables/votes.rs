//! Table `votes`: the answers of a human preference study, one row per rater and pair.
//!
//! Written by `anchor study serve` as raters vote (the whole table rewritten atomically
//! after each vote), read by `anchor study report`. Sorted by (`rater`, `position`).

use std::sync::{Arc, OnceLock};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, strs};
use crate::columns::{Columns, opt_i64};
use crate::error::Result;
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "votes";

/// the rater's id, as they gave it
pub const RATER: &str = "rater";
/// the pair answered (`study_pairs.pair_id`)
pub const PAIR_ID: &str = "pair_id";
/// the vote's place in the rater's sequence (0, 1, ...)
pub const POSITION: &str = "position";
/// which image better shows the caption's subjects: `left`, `right` or `equal`
pub const SUBJECTS: &str = "subjects";
/// which image is of better quality: `left`, `right` or `equal`
pub const QUALITY: &str = "quality";

/// The answers a question takes.
pub const CHOICES: [&str; 3] = ["left", "right", "equal"];

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(RATER, DataType::Utf8, false),
                Field::new(PAIR_ID, DataType::Utf8, false),
                Field::new(POSITION, DataType::Int64, false),
                Field::new(SUBJECTS, DataType::Utf8, false),
                Field::new(QUALITY, DataType::Utf8, false),
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

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The rater's id.
    pub rater: String,
    /// The pair answered.
    pub pair_id: String,
    /// The vote's place in the rater's sequence.
    pub position: i64,
    /// Which image better shows the caption's subjects.
    pub subjects: String,
    /// Which image is of better quality.
    pub quality: String,
}

/// Rows to a batch of the declared schema (in the given order).
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.rater.as_str())),
            strs(rows.iter().map(|r| r.pair_id.as_str())),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.position),
            )),
            strs(rows.iter().map(|r| r.subjects.as_str())),
            strs(rows.iter().map(|r| r.quality.as_str())),
        ],
    )
}

/// Rows of a batch (any string layout); a null in a non-null column is an error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (rater, pair_id, subjects, quality) = (
        c.strings(RATER)?,
        c.strings(PAIR_ID)?,
        c.strings(SUBJECTS)?,
        c.strings(QUALITY)?,
    );
    let position = c.int64(POSITION)?;
    (0..b.num_rows())
        .map(|i| {
            Ok(Row {
                rater: c.required(RATER, i, rater.get(i))?.to_owned(),
                pair_id: c.required(PAIR_ID, i, pair_id.get(i))?.to_owned(),
                position: c.required(POSITION, i, opt_i64(position, i))?,
                subjects: c.required(SUBJECTS, i, subjects.get(i))?.to_owned(),
                quality: c.required(QUALITY, i, quality.get(i))?.to_owned(),
            })
        })
        .collect()
}

/// Every row of the table `reader` reads, in part order.
pub fn read(reader: &TableReader) -> Result<Vec<Row>> {
    super::read_rows(reader, None, from_batch)
}
