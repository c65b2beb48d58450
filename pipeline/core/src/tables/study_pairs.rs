//! Table `study_pairs`: the items of a human preference study, one row per pair of images
//! shown side by side.
//!
//! Written by `study`. Sorted by `pair_id`, the order a study is made in (each rater sees
//! them in an order of their own).

use std::sync::{Arc, OnceLock};

use arrow_array::{BinaryArray, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, opt_strs, strs};
use crate::columns::{Columns, opt_i64};
use crate::error::Result;
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "study_pairs";

/// the pair's id (`q00001`, ...), in the order the study was made
pub const PAIR_ID: &str = "pair_id";
/// `compare` (two configurations, one caption and seed) or `attention` (one configuration, the caption's image against another caption's)
pub const KIND: &str = "kind";
/// the caption's dataset id (`pairs.id`)
pub const CAPTION_ID: &str = "caption_id";
/// the caption shown with the images (`pairs.caption`)
pub const CAPTION: &str = "caption";
/// noise seed of both images
pub const SEED: &str = "seed";
/// configuration of the left image
pub const LEFT_CONFIGURATION: &str = "left_configuration";
/// configuration of the right image
pub const RIGHT_CONFIGURATION: &str = "right_configuration";
/// caption id the left image was generated for
pub const LEFT_ID: &str = "left_id";
/// caption id the right image was generated for
pub const RIGHT_ID: &str = "right_id";
/// attention checks: the side whose image was generated for the caption (`left` or `right`); null for `compare`
pub const EXPECTED: &str = "expected";
/// the left image's encoded bytes (`generations.image`)
pub const LEFT_IMAGE: &str = "left_image";
/// the right image's encoded bytes
pub const RIGHT_IMAGE: &str = "right_image";

/// The value of `kind` for a comparison of two configurations.
pub const COMPARE: &str = "compare";
/// The value of `kind` for an attention check.
pub const ATTENTION: &str = "attention";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(PAIR_ID, DataType::Utf8, false),
                Field::new(KIND, DataType::Utf8, false),
                Field::new(CAPTION_ID, DataType::Utf8, false),
                Field::new(CAPTION, DataType::Utf8, false),
                Field::new(SEED, DataType::Int64, false),
                Field::new(LEFT_CONFIGURATION, DataType::Utf8, false),
                Field::new(RIGHT_CONFIGURATION, DataType::Utf8, false),
                Field::new(LEFT_ID, DataType::Utf8, false),
                Field::new(RIGHT_ID, DataType::Utf8, false),
                Field::new(EXPECTED, DataType::Utf8, true),
                Field::new(LEFT_IMAGE, DataType::Binary, false),
                Field::new(RIGHT_IMAGE, DataType::Binary, false),
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 256,
};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The pair's id.
    pub pair_id: String,
    /// [`COMPARE`] or [`ATTENTION`].
    pub kind: String,
    /// The caption's dataset id.
    pub caption_id: String,
    /// The caption shown.
    pub caption: String,
    /// Noise seed of both images.
    pub seed: i64,
    /// Configuration of the left image.
    pub left_configuration: String,
    /// Configuration of the right image.
    pub right_configuration: String,
    /// Caption id of the left image.
    pub left_id: String,
    /// Caption id of the right image.
    pub right_id: String,
    /// Attention checks: the side that shows the caption.
    pub expected: Option<String>,
    /// The left image's encoded bytes.
    pub left_image: Vec<u8>,
    /// The right image's encoded bytes.
    pub right_image: Vec<u8>,
}

/// Rows to a batch of the declared schema (in the given order).
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.pair_id.as_str())),
            strs(rows.iter().map(|r| r.kind.as_str())),
            strs(rows.iter().map(|r| r.caption_id.as_str())),
            strs(rows.iter().map(|r| r.caption.as_str())),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.seed))),
            strs(rows.iter().map(|r| r.left_configuration.as_str())),
            strs(rows.iter().map(|r| r.right_configuration.as_str())),
            strs(rows.iter().map(|r| r.left_id.as_str())),
            strs(rows.iter().map(|r| r.right_id.as_str())),
            opt_strs(rows.iter().map(|r| r.expected.as_deref())),
            Arc::new(BinaryArray::from_iter_values(
                rows.iter().map(|r| r.left_image.as_slice()),
            )),
            Arc::new(BinaryArray::from_iter_values(
                rows.iter().map(|r| r.right_image.as_slice()),
            )),
        ],
    )
}

/// Rows of a batch (any string and binary layout); a null in a non-null column is an
/// error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (pair_id, kind, caption_id, caption) = (
        c.strings(PAIR_ID)?,
        c.strings(KIND)?,
        c.strings(CAPTION_ID)?,
        c.strings(CAPTION)?,
    );
    let seed = c.int64(SEED)?;
    let (left_configuration, right_configuration) = (
        c.strings(LEFT_CONFIGURATION)?,
        c.strings(RIGHT_CONFIGURATION)?,
    );
    let (left_id, right_id, expected) = (
        c.strings(LEFT_ID)?,
        c.strings(RIGHT_ID)?,
        c.strings(EXPECTED)?,
    );
    let (left_image, right_image) = (c.bytes(LEFT_IMAGE)?, c.bytes(RIGHT_IMAGE)?);
    (0..b.num_rows())
        .map(|i| {
            let text = |name: &str, s: &crate::columns::Strings<'_>| {
                c.required(name, i, s.get(i)).map(str::to_owned)
            };
            Ok(Row {
                pair_id: text(PAIR_ID, &pair_id)?,
                kind: text(KIND, &kind)?,
                caption_id: text(CAPTION_ID, &caption_id)?,
                caption: text(CAPTION, &caption)?,
                seed: c.required(SEED, i, opt_i64(seed, i))?,
                left_configuration: text(LEFT_CONFIGURATION, &left_configuration)?,
                right_configuration: text(RIGHT_CONFIGURATION, &right_configuration)?,
                left_id: text(LEFT_ID, &left_id)?,
                right_id: text(RIGHT_ID, &right_id)?,
                expected: expected.get(i).map(str::to_owned),
                left_image: c.required(LEFT_IMAGE, i, left_image.get(i))?.to_vec(),
                right_image: c.required(RIGHT_IMAGE, i, right_image.get(i))?.to_vec(),
            })
        })
        .collect()
}

/// Every row of the table `reader` reads, in part order.
pub fn read(reader: &TableReader) -> Result<Vec<Row>> {
    super::read_rows(reader, None, from_batch)
}
