//! Typed column access that names the table and column instead of panicking.

//!
//! A thin layer over [`anchor_core::columns::Columns`], which holds the type checks; this
//! module keeps the crate's call shape and its [`Error`].

use anchor_core::columns::Columns;
use arrow_array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    StructArray,
};

use crate::{Error, Result};

/// A `Utf8` column.
pub fn utf8<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a StringArray> {
    Ok(Columns::new(batch, table).utf8(name)?)
}

/// A `Boolean` column.
pub fn boolean<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a BooleanArray> {
    Ok(Columns::new(batch, table).boolean(name)?)
}

/// An `Int64` column.
pub fn int64<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a Int64Array> {
    Ok(Columns::new(batch, table).int64(name)?)
}

/// A `Float64` column.
pub fn float64<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a Float64Array> {
    Ok(Columns::new(batch, table).float64(name)?)
}

/// The `bytes` child of a Hugging Face `Image` struct column, and the struct itself
/// (whose own nulls mark rows without an image).
pub fn image_bytes<'a>(
    batch: &'a RecordBatch,
    table: &str,
    name: &str,
) -> Result<(&'a StructArray, &'a BinaryArray)> {
    Ok(Columns::new(batch, table).image_bytes(name)?)
}

/// Value `i` of a non-null string column, or an error naming the row.
pub fn str_at<'a>(a: &'a StringArray, i: usize, table: &str, name: &str) -> Result<&'a str> {
    if a.is_null(i) {
        return Err(Error::Table {
            table: table.to_owned(),
            detail: format!("column {name} is null in row {i}"),
        });
    }
    Ok(a.value(i))
}
