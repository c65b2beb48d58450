//! Typed access to the columns of a record batch read from a table, with errors that name
//! the table and column instead of panicking on a wrong type, and the row on a null in a
//! non-null column.
//!
//! The per-table row codecs of [`crate::tables`] are built on it. String columns are read
//! through [`Columns::strings`], which accepts `Utf8`, `LargeUtf8` and the `Utf8View` that
//! Polars-written files come back as; binary and image columns likewise accept every
//! binary layout. [`Columns::utf8`] and [`Columns::binary`] remain for code that only reads
//! files this pipeline wrote.
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

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Float32Array, Float64Array,
    Int32Array, Int64Array, LargeBinaryArray, LargeStringArray, ListArray, RecordBatch,
    StringArray, StringViewArray, StructArray, UInt32Array,
};
use arrow_schema::DataType;

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
        /// A `Float32` column.
        float32, Float32Array, "Float32"
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

    /// The table name errors carry.
    pub fn table(&self) -> &'t str {
        self.table
    }

    /// The batch's row count.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The error for a null in non-null column `column` at `row`.
    pub fn null_at(&self, column: &str, row: usize) -> Error {
        Error::Column {
            table: self.table.to_owned(),
            column: column.to_owned(),
            detail: format!("null in row {row} of a non-null column"),
        }
    }

    /// `v`, or the error for a null in non-null column `column` at `row`.
    pub fn required<T>(&self, column: &str, row: usize, v: Option<T>) -> Result<T> {
        v.ok_or_else(|| self.null_at(column, row))
    }

    /// A string column of any layout (`Utf8`, `LargeUtf8`, `Utf8View`).
    pub fn strings(&self, column: &str) -> Result<Strings<'a>> {
        strings_of(self.column(column)?, self.table, column)
    }

    /// A binary column of any layout (`Binary`, `LargeBinary`, `BinaryView`).
    pub fn bytes(&self, column: &str) -> Result<Bytes<'a>> {
        bytes_of(self.column(column)?).ok_or_else(|| self.wrong_type(column, "Binary"))
    }

    /// A Hugging Face `Image` struct column (`struct<bytes, path>`), any string and binary
    /// layout.
    pub fn image(&self, column: &str) -> Result<Images<'a>> {
        let image = self.structs(column)?;
        let bytes = image
            .column_by_name("bytes")
            .and_then(bytes_of)
            .ok_or_else(|| self.wrong_type(column, "Struct(\"bytes\": Binary, ...)"))?;
        let path = match image.column_by_name("path") {
            Some(p) => Some(strings_of(p, self.table, column)?),
            None => None,
        };
        Ok(Images { image, bytes, path })
    }

    /// A `List` of strings (any string layout) column.
    pub fn string_lists(&self, column: &str) -> Result<StringLists<'a>> {
        let list = self.list(column)?;
        let values = strings_of(list.values(), self.table, column)?;
        Ok(StringLists { list, values })
    }

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

/// The strings of a `List` of strings cell (any string layout; nulls skipped); empty for a
/// null cell or items that are not strings.
pub fn str_list(array: &ListArray, row: usize) -> Vec<String> {
    match strings_of(array.values(), "", "") {
        Ok(values) => StringLists {
            list: array,
            values,
        }
        .get(row),
        Err(_) => Vec::new(),
    }
}

/// The fields of struct array `s` as a batch (every field nullable, so a file that declares
/// them so still reads), for reading its children through [`Columns`].
pub fn struct_batch(s: &StructArray, table: &str) -> Result<RecordBatch> {
    let fields: Vec<arrow_schema::Field> = s
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(s.len()));
    RecordBatch::try_new_with_options(schema, s.columns().to_vec(), &options).map_err(|source| {
        Error::Arrow {
            table: table.to_owned(),
            source,
        }
    })
}

fn strings_of<'a>(array: &'a ArrayRef, table: &str, column: &str) -> Result<Strings<'a>> {
    match array.data_type() {
        DataType::Utf8 => Ok(Strings::Utf8(array.as_string::<i32>())),
        DataType::LargeUtf8 => Ok(Strings::Large(array.as_string::<i64>())),
        DataType::Utf8View => Ok(Strings::View(array.as_string_view())),
        other => Err(Error::Column {
            table: table.to_owned(),
            column: column.to_owned(),
            detail: format!("expected Utf8, LargeUtf8 or Utf8View, found {other}"),
        }),
    }
}

fn bytes_of(array: &ArrayRef) -> Option<Bytes<'_>> {
    match array.data_type() {
        DataType::Binary => Some(Bytes::Binary(array.as_binary::<i32>())),
        DataType::LargeBinary => Some(Bytes::Large(array.as_binary::<i64>())),
        DataType::BinaryView => Some(Bytes::View(array.as_binary_view())),
        _ => None,
    }
}

/// A string column in whichever layout the file was written with.
#[derive(Debug, Clone, Copy)]
pub enum Strings<'a> {
    /// `Utf8`.
    Utf8(&'a StringArray),
    /// `LargeUtf8`.
    Large(&'a LargeStringArray),
    /// `Utf8View` (Polars).
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    /// Number of slots.
    pub fn len(&self) -> usize {
        match self {
            Strings::Utf8(a) => a.len(),
            Strings::Large(a) => a.len(),
            Strings::View(a) => a.len(),
        }
    }

    /// True without slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `row`, `None` for a null slot or a row out of range.
    pub fn get(&self, row: usize) -> Option<&'a str> {
        if row >= self.len() {
            return None;
        }
        match self {
            Strings::Utf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            Strings::Large(a) => (!a.is_null(row)).then(|| a.value(row)),
            Strings::View(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// A binary column in whichever layout the file was written with.
#[derive(Debug, Clone, Copy)]
pub enum Bytes<'a> {
    /// `Binary`.
    Binary(&'a BinaryArray),
    /// `LargeBinary`.
    Large(&'a LargeBinaryArray),
    /// `BinaryView`.
    View(&'a BinaryViewArray),
}

impl<'a> Bytes<'a> {
    /// The value at `row`, `None` for a null slot or a row out of range.
    pub fn get(&self, row: usize) -> Option<&'a [u8]> {
        match self {
            Bytes::Binary(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            Bytes::Large(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
            Bytes::View(a) => (row < a.len() && !a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// A Hugging Face `Image` column: `struct<bytes, path>`.
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    image: &'a StructArray,
    bytes: Bytes<'a>,
    path: Option<Strings<'a>>,
}

impl<'a> Images<'a> {
    /// The encoded bytes at `row`; `None` when the image or its bytes are null.
    pub fn bytes(&self, row: usize) -> Option<&'a [u8]> {
        if row >= self.image.len() || self.image.is_null(row) {
            return None;
        }
        self.bytes.get(row)
    }

    /// The file name at `row`, when there is one.
    pub fn path(&self, row: usize) -> Option<&'a str> {
        if row >= self.image.len() || self.image.is_null(row) {
            return None;
        }
        self.path.and_then(|p| p.get(row))
    }
}

/// A `List` of strings column.
#[derive(Debug, Clone, Copy)]
pub struct StringLists<'a> {
    list: &'a ListArray,
    values: Strings<'a>,
}

impl StringLists<'_> {
    /// The non-null strings of the cell at `row` (empty for a null cell).
    pub fn get(&self, row: usize) -> Vec<String> {
        if row >= self.list.len() || self.list.is_null(row) {
            return Vec::new();
        }
        let offsets = self.list.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        (start..end)
            .filter_map(|i| self.values.get(i).map(str::to_owned))
            .collect()
    }
}
