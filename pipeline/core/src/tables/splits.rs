//! Table `splits`: the stored split assignment of every kept pair.
//!
//! Written by `split`, read by `export`, `annotate`, `sample` and `eval`. Sorted by `id`.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TableDef;

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
