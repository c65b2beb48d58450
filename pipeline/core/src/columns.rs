//! Typed access to the columns of a record batch read from a table, with errors that name
//! the table and column instead of panicking on a wrong type.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! # fn main() -> anchor_core::Result<()> {
//! let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
//! let cols = anchor_core::columns::Columns::new(&batch, "pairs");
//! assert_eq!(cols.utf8("id")?.value(0), "a");
//! assert!(cols.int32("id").is_err());
//! # Ok(())
//! # }
//! ```

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, StructArray, UInt32Array,
};

use crate::error::{Error, Result};

/// The columns of one batch of table `table`.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a, 't> {
    batch: &'a RecordBatch,
    table: &'t str,
}

macro_rules! typed {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $label:literal) => {
        $(#[$doc])*
        pub fn $name(&self, column: &str) -> Result<&'a $ty> {
            self.column(column)?
                .as_any()
                .downcast_ref::<$ty>()
                .ok_or_else(|| self.wrong_type(column, $label))
        }
    };
}

impl<'a, 't> Columns<'a, 't> {
    /// Wraps `batch`, read from `table` (the name goes into error messages).
    pub fn new(batch: &'a RecordBatch, table: &'t str) -> Self {
        Columns { batch, table }
    }

    /// The raw column.
    pub fn column(&self, column: &str) -> Result<&'a ArrayRef> {
        self.batch
            .column_by_name(column)
            .ok_or_else(|| Error::Column {
                table: self.table.to_owned(),
                column: column.to_owned(),
                detail: "missing".to_owned(),
            })
    }

    fn wrong_type(&self, column: &str, want: &str) -> Error {
        let got = self
            .batch
            .column_by_name(column)
            .map(|c| c.data_type().to_string())
            .unwrap_or_default();
        Error::Column {
            table: self.table.to_owned(),
            column: column.to_owned(),
            detail: format!("expected {want}, found {got}"),
        }
    }

    typed!(
        /// A `Utf8` column.
        utf8, StringArray, "Utf8"
    );
    typed!(
        /// An `Int32` column.
        int32, Int32Array, "Int32"
    );
    typed!(
        /// An `Int64` column.
        int64, Int64Array, "Int64"
    );
    typed!(
        /// A `UInt32` column.
        uint32, UInt32Array, "UInt32"
    );
    typed!(
        /// A `Float64` column.
        float64, Float64Array, "Float64"
    );
    typed!(
        /// A `Boolean` column.
        boolean, BooleanArray, "Boolean"
    );
    typed!(
        /// A `Binary` column.
        binary, BinaryArray, "Binary"
    );
    typed!(
        /// A `List` column.
        list, ListArray, "List"
    );
    typed!(
        /// A `Struct` column.
        structs, StructArray, "Struct"
    );

    /// The `bytes` child of a Hugging Face `Image` struct column.
    pub fn image_bytes(&self, column: &str) -> Result<(&'a StructArray, &'a BinaryArray)> {
        let image = self.structs(column)?;
        let bytes = image
            .column_by_name("bytes")
            .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
            .ok_or_else(|| self.wrong_type(column, "Struct(\"bytes\": Binary, ...)"))?;
        Ok((image, bytes))
    }
}

/// `Some(value)` unless the slot is null.
pub fn opt_str(array: &StringArray, row: usize) -> Option<&str> {
    (!array.is_null(row)).then(|| array.value(row))
}

/// `Some(value)` unless the slot is null.
pub fn opt_i32(array: &Int32Array, row: usize) -> Option<i32> {
    (!array.is_null(row)).then(|| array.value(row))
}

/// `Some(value)` unless the slot is null.
pub fn opt_i64(array: &Int64Array, row: usize) -> Option<i64> {
    (!array.is_null(row)).then(|| array.value(row))
}

/// `Some(value)` unless the slot is null.
pub fn opt_f64(array: &Float64Array, row: usize) -> Option<f64> {
    (!array.is_null(row)).then(|| array.value(row))
}

/// `Some(value)` unless the slot is null.
pub fn opt_bool(array: &BooleanArray, row: usize) -> Option<bool> {
    (!array.is_null(row)).then(|| array.value(row))
}

/// The strings of a `List(Utf8)` cell (nulls skipped); empty for a null cell.
pub fn str_list(array: &ListArray, row: usize) -> Vec<String> {
    if array.is_null(row) {
        return Vec::new();
    }
    let values = array.value(row);
    match values.as_any().downcast_ref::<StringArray>() {
        Some(s) => s.iter().flatten().map(str::to_owned).collect(),
        None => Vec::new(),
    }
}
