//! Every table of the pipeline, declared once.
//!
//! Each module names one table: `NAME`, its column-name constants and
//! `schema()`. `schemas/<table>.md` describes the same columns for people, and
//! [`doc::check`] (run by a test over [`ALL`]) keeps the two in agreement.

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, SchemaRef};

use crate::error::{Error, Result};
use crate::store::TableReader;

pub mod articles;
pub mod dataset;
pub mod demo_truth;
pub mod doc;
pub mod generations;
pub mod metrics;
pub mod pairs;
pub mod pairs_curated;
pub mod pairs_scored;
pub mod splits;
pub mod study_pairs;
pub mod subjects;
pub mod train_log;
pub mod votes;

/// A table's declaration: its name, schema and the row-group size its writer
/// uses (fixed so that reruns are byte-identical).
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    /// Table name: its folder under the output directory.
    pub name: &'static str,
    /// The declared schema.
    pub schema: fn() -> SchemaRef,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
}

/// Every registered table.
pub const ALL: &[TableDef] = &[
    articles::DEF,
    pairs::DEF,
    demo_truth::DEF,
    pairs_scored::DEF,
    pairs_curated::DEF,
    splits::DEF,
    subjects::DEF,
    generations::DEF,
    train_log::DEF,
    metrics::DEF,
    study_pairs::DEF,
    votes::DEF,
    dataset::DEF,
];

/// The table named `name`, if registered.
pub fn lookup(name: &str) -> Option<&'static TableDef> {
    ALL.iter().find(|t| t.name == name)
}

/// The Hugging Face `Image` feature's storage type:
/// `struct<bytes: binary, path: string>`.
pub fn image_type() -> DataType {
    DataType::Struct(image_fields())
}

/// The two fields of [`image_type`].
pub fn image_fields() -> Fields {
    Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ])
}

/// `List(Utf8)` with nullable items, as Polars and pyarrow write it.
pub fn utf8_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Every row of the table `reader` reads, decoded by `decode` (a table's `from_batch`), in
/// part order.
pub fn read_rows<R>(
    reader: &TableReader,
    columns: Option<&[&str]>,
    decode: fn(&RecordBatch) -> Result<Vec<R>>,
) -> Result<Vec<R>> {
    let mut rows = Vec::new();
    for batch in reader.read_all(columns, 8192) {
        rows.extend(decode(&batch?)?);
    }
    Ok(rows)
}

/// A batch of `schema` from `columns`, with an error naming `table`.
pub(crate) fn batch(table: &str, schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns).map_err(|source| Error::Arrow {
        table: table.to_owned(),
        source,
    })
}

/// A `Utf8` column without nulls.
pub(crate) fn strs<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A nullable `Utf8` column.
pub(crate) fn opt_strs<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// A `List(Utf8)` column of the [`utf8_list`] type.
pub(crate) fn str_lists<'a>(values: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = arrow_array::builder::ListBuilder::new(arrow_array::builder::StringBuilder::new())
        .with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
    for cell in values {
        for v in cell {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// A Hugging Face `Image` column: a null struct where `bytes` is `None`.
pub(crate) fn image_array<'a>(
    table: &str,
    values: impl Iterator<Item = (Option<&'a [u8]>, Option<&'a str>)>,
) -> Result<ArrayRef> {
    let (bytes, paths): (Vec<Option<&[u8]>>, Vec<Option<&str>>) = values.unzip();
    let validity: NullBuffer = bytes.iter().map(Option::is_some).collect();
    let validity = (validity.null_count() > 0).then_some(validity);
    let bytes: ArrayRef = Arc::new(bytes.into_iter().collect::<BinaryArray>());
    let paths: ArrayRef = Arc::new(paths.into_iter().collect::<StringArray>());
    let image =
        StructArray::try_new(image_fields(), vec![bytes, paths], validity).map_err(|source| {
            Error::Arrow {
                table: table.to_owned(),
                source,
            }
        })?;
    Ok(Arc::new(image) as ArrayRef)
}

#[cfg(test)]
mod codec_tests;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn schemas_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
    }

    #[test]
    fn every_table_matches_its_schema_doc() {
        let mut problems = Vec::new();
        for table in ALL {
            let path = schemas_dir().join(format!("{}.md", table.name));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Err(e) = doc::check(&(table.schema)(), &text) {
                        problems.push(format!("{}: {e}", path.display()));
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn table_names_are_unique() {
        let mut names: Vec<&str> = ALL.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
