//! Table `splits`: the stored split assignment of every kept pair.
//!
//! Written by `split`, read by `export`, `annotate`, `sample` and `eval`. Sorted by `id`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, opt_strs, strs};
use crate::columns::Columns;
use crate::error::Result;
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "splits";

/// `pairs_curated.id` (kept pairs only)
pub const ID: &str = "id";
/// `train`, `val` or `test`
pub const SPLIT: &str = "split";
/// `entity` or `non_entity`
pub const SUBSET: &str = "subset";
/// outlet name
pub const OUTLET: &str = "outlet";
/// the smallest pair id in the pair's (article, cluster) group; its hash picks the split
pub const GROUP_KEY: &str = "group_key";
/// the group's split before a merge moved it (null when it never moved)
pub const PREVIOUS_SPLIT: &str = "previous_split";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(SPLIT, DataType::Utf8, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(GROUP_KEY, DataType::Utf8, false),
                Field::new(PREVIOUS_SPLIT, DataType::Utf8, true),
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
    /// Pair id.
    pub id: String,
    /// `train`, `val` or `test`.
    pub split: String,
    /// `entity` or `non_entity`.
    pub subset: String,
    /// Outlet name.
    pub outlet: String,
    /// The group's smallest pair id.
    pub group_key: String,
    /// The group's split before a merge moved it.
    pub previous_split: Option<String>,
}

/// Rows to a batch of the declared schema.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.id.as_str())),
            strs(rows.iter().map(|r| r.split.as_str())),
            strs(rows.iter().map(|r| r.subset.as_str())),
            strs(rows.iter().map(|r| r.outlet.as_str())),
            strs(rows.iter().map(|r| r.group_key.as_str())),
            opt_strs(rows.iter().map(|r| r.previous_split.as_deref())),
        ],
    )
}

/// Rows of a batch (any string layout); a null in a non-null column is an error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (id, split, subset) = (c.strings(ID)?, c.strings(SPLIT)?, c.strings(SUBSET)?);
    let (outlet, group_key) = (c.strings(OUTLET)?, c.strings(GROUP_KEY)?);
    let previous = c.strings(PREVIOUS_SPLIT)?;
    (0..b.num_rows())
        .map(|i| {
            Ok(Row {
                id: c.required(ID, i, id.get(i))?.to_owned(),
                split: c.required(SPLIT, i, split.get(i))?.to_owned(),
                subset: c.required(SUBSET, i, subset.get(i))?.to_owned(),
                outlet: c.required(OUTLET, i, outlet.get(i))?.to_owned(),
                group_key: c.required(GROUP_KEY, i, group_key.get(i))?.to_owned(),
                previous_split: previous.get(i).map(str::to_owned),
            })
        })
        .collect()
}

/// Each id's split (`train`, `val` or `test`). Reads only the `id` and `split` columns.
pub fn split_of(reader: &TableReader) -> Result<BTreeMap<String, String>> {
    let mut splits = BTreeMap::new();
    for b in reader.read_all(Some(&[ID, SPLIT]), 8192) {
        let b = b?;
        let c = Columns::new(&b, NAME);
        let (id, sp) = (c.strings(ID)?, c.strings(SPLIT)?);
        for i in 0..b.num_rows() {
            splits.insert(
                c.required(ID, i, id.get(i))?.to_owned(),
                c.required(SPLIT, i, sp.get(i))?.to_owned(),
            );
        }
    }
    Ok(splits)
}

/// The ids assigned to split `split` (every id in the table is a kept pair), sorted. Reads
/// only the `id` and `split` columns.
pub fn ids_in_split(reader: &TableReader, split: &str) -> Result<BTreeSet<String>> {
    Ok(split_of(reader)?
        .into_iter()
        .filter_map(|(id, s)| (s == split).then_some(id))
        .collect())
}
