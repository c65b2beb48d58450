//! Typed column access that names the table and column instead of panicking.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    StructArray,
};

use crate::{Error, Result};

fn column<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a dyn Array> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| Error::Table {
            table: table.to_owned(),
            detail: format!("column {name} is missing"),
        })
}

fn wrong_type(table: &str, name: &str, expected: &str, array: &dyn Array) -> Error {
    Error::Table {
        table: table.to_owned(),
        detail: format!(
            "column {name} is {}, expected {expected}",
            array.data_type()
        ),
    }
}

/// A `Utf8` column.
pub fn utf8<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a StringArray> {
    let c = column(batch, table, name)?;
    c.as_string_opt::<i32>()
        .ok_or_else(|| wrong_type(table, name, "Utf8", c))
}

/// A `Boolean` column.
pub fn boolean<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a BooleanArray> {
    let c = column(batch, table, name)?;
    c.as_boolean_opt()
        .ok_or_else(|| wrong_type(table, name, "Boolean", c))
}

/// An `Int64` column.
pub fn int64<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a Int64Array> {
    let c = column(batch, table, name)?;
    c.as_primitive_opt::<Int64Type>()
        .ok_or_else(|| wrong_type(table, name, "Int64", c))
}

/// A `Float64` column.
pub fn float64<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a Float64Array> {
    let c = column(batch, table, name)?;
    c.as_primitive_opt::<Float64Type>()
        .ok_or_else(|| wrong_type(table, name, "Float64", c))
}

/// The `bytes` child of a Hugging Face `Image` struct column, and the struct itself
/// (whose own nulls mark rows without an image).
pub fn image_bytes<'a>(
    batch: &'a RecordBatch,
    table: &str,
    name: &str,
) -> Result<(&'a StructArray, &'a BinaryArray)> {
    let c = column(batch, table, name)?;
    let s = c
        .as_struct_opt()
        .ok_or_else(|| wrong_type(table, name, "Struct(bytes, path)", c))?;
    let bytes = s.column_by_name("bytes").ok_or_else(|| Error::Table {
        table: table.to_owned(),
        detail: format!("column {name} has no bytes field"),
    })?;
    let bytes = bytes
        .as_binary_opt::<i32>()
        .ok_or_else(|| wrong_type(table, &format!("{name}.bytes"), "Binary", bytes.as_ref()))?;
    Ok((s, bytes))
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
