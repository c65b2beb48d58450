//! The table store: a table is a folder of Parquet part files.
//!
//! ```text
//! <out>/<table>/part-00000.parquet
//! <out>/<table>/part-00001.parquet
//! ```
//!
//! [`PartWriter`] streams record batches into `.part-NNNNN.parquet.tmp`, and
//! [`PartWriter::commit`] closes the footer, fsyncs and renames the file into
//! place, so a reader never sees half a part. Writer settings are fixed
//! (compression, row-group size, no timestamps) so that the same rows give the
//! same bytes. [`TableReader`] validates every footer and schema and names the
//! file it could not read.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::tables::TableDef;

/// Key/value metadata key holding the table name.
pub const META_TABLE: &str = "anchor.table";
/// Key/value metadata key holding the producing step's fingerprint.
pub const META_FINGERPRINT: &str = "anchor.fingerprint";
/// Key/value metadata key holding the part index.
pub const META_PART: &str = "anchor.part";

/// The fingerprint a file of `table` was tagged with when written ([`PartWriter`]), if any.
pub fn file_fingerprint(path: &Path, table: &str) -> Result<Option<String>> {
    let file = File::open(path).at(path)?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| Error::Parquet {
            table: table.to_owned(),
            path: path.to_path_buf(),
            source,
        })?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == META_FINGERPRINT))
        .and_then(|k| k.value.clone()))
}

/// The file name of part `index`.
pub fn part_file_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// The part index encoded in a part file name, if it is one.
pub fn parse_part_file_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    if digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The folder of table `table` under output directory `out`.
pub fn table_dir(out: &Path, table: &str) -> PathBuf {
    out.join(table)
}

/// What a committed part file is: its name, rows, size and content hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartFile {
    /// File name inside the table folder.
    pub file: String,
    /// Number of rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// A `Write` that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the record batches of one part of one table to a temporary file.
pub struct PartWriter {
    table: &'static str,
    schema: SchemaRef,
    tmp_path: PathBuf,
    final_path: PathBuf,
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    rows: u64,
}

impl PartWriter {
    /// Starts part `index` of `table` under `out`, tagged with the producing
    /// step's `fingerprint`.
    pub fn create(out: &Path, table: &TableDef, index: usize, fingerprint: &str) -> Result<Self> {
        let dir = table_dir(out, table.name);
        let final_path = dir.join(part_file_name(index));
        Self::create_at(
            final_path,
            table,
            fingerprint,
            Some(index),
            (table.schema)(),
        )
    }

    /// Starts a file of `table`'s columns at `final_path` (a published file outside the
    /// table store, e.g. the Hugging Face export), with `schema`: the table's fields, plus
    /// any schema metadata to embed (Hugging Face's `huggingface` features key, say).
    pub fn create_at(
        final_path: PathBuf,
        table: &TableDef,
        fingerprint: &str,
        index: Option<usize>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let dir = final_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&dir).at(&dir)?;
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp_path).at(&tmp_path)?;
        let sink = HashingWriter {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(table.row_group_rows))
            .set_key_value_metadata(Some(
                [
                    KeyValue::new(META_TABLE.to_owned(), table.name.to_owned()),
                    KeyValue::new(META_FINGERPRINT.to_owned(), fingerprint.to_owned()),
                ]
                .into_iter()
                .chain(index.map(|i| KeyValue::new(META_PART.to_owned(), i.to_string())))
                .collect(),
            ))
            .build();
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(|source| {
            Error::Parquet {
                table: table.name.to_owned(),
                path: tmp_path.clone(),
                source,
            }
        })?;
        Ok(PartWriter {
            table: table.name,
            schema,
            tmp_path,
            final_path,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch; its schema must equal the table's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(Error::SchemaMismatch {
                table: self.table.to_owned(),
                path: self.tmp_path.clone(),
                detail: describe_schema_difference(&self.schema, &batch.schema()),
            });
        }
        self.writer.write(batch).map_err(|source| Error::Parquet {
            table: self.table.to_owned(),
            path: self.tmp_path.clone(),
            source,
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer, fsyncs and renames the file into place.
    pub fn commit(self) -> Result<PartFile> {
        let PartWriter {
            table,
            tmp_path,
            final_path,
            writer,
            rows,
            ..
        } = self;
        let sink = writer.into_inner().map_err(|source| Error::Parquet {
            table: table.to_owned(),
            path: tmp_path.clone(),
            source,
        })?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| Error::io(&tmp_path, e.into_error()))?;
        file.sync_all().at(&tmp_path)?;
        drop(file);
        fs::rename(&tmp_path, &final_path).at(&final_path)?;
        sync_dir(final_path.parent());
        Ok(PartFile {
            file: final_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Makes a rename durable. Failure to sync a directory is not fatal (some
/// filesystems refuse it); the rename itself already happened.
pub(crate) fn sync_dir(dir: Option<&Path>) {
    if let Some(dir) = dir
        && let Ok(handle) = File::open(dir)
    {
        let _ = handle.sync_all();
    }
}

fn describe_schema_difference(want: &Schema, got: &Schema) -> String {
    let want_cols: Vec<String> = want
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    let got_cols: Vec<String> = got
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    format!(
        "expected [{}], got [{}]",
        want_cols.join(", "),
        got_cols.join(", ")
    )
}

/// sha256 and size of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    anchor_digest::sha256_file_sized(path).at(path)
}

/// Cheap integrity check of a committed part: it exists, has the recorded
/// size and ends with the Parquet magic. A full check also compares sha256.
pub fn check_part(table: &str, dir: &Path, part: &PartFile, full: bool) -> Result<()> {
    let path = dir.join(&part.file);
    let damaged = |reason: String| Error::DamagedPart {
        table: table.to_owned(),
        path: path.clone(),
        reason,
    };
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(damaged("file is missing".into()));
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    if meta.len() != part.bytes {
        return Err(damaged(format!(
            "size {} bytes, the ledger recorded {}",
            meta.len(),
            part.bytes
        )));
    }
    let mut file = File::open(&path).at(&path)?;
    if meta.len() < 12 {
        return Err(damaged("too short to be Parquet".into()));
    }
    let mut tail = [0u8; 4];
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::End(-4)).at(&path)?;
    file.read_exact(&mut tail).at(&path)?;
    if &tail != b"PAR1" {
        return Err(damaged("no Parquet footer magic".into()));
    }
    if full {
        let (sha, _) = hash_file(&path)?;
        if sha != part.sha256 {
            return Err(damaged(format!(
                "sha256 {sha}, the ledger recorded {}",
                part.sha256
            )));
        }
    }
    Ok(())
}

/// Reads a table's part files, validating footers and schema.
#[derive(Debug, Clone)]
pub struct TableReader {
    table: String,
    dir: PathBuf,
    parts: Vec<PathBuf>,
    expected: Option<SchemaRef>,
}

impl TableReader {
    /// Opens table `table` under `out`, listing its committed part files in
    /// index order. With `expected`, every part's schema is checked against it
    /// (by column name and type) when opened.
    pub fn open(out: &Path, table: &str, expected: Option<SchemaRef>) -> Result<Self> {
        let dir = table_dir(out, table);
        Self::open_dir(&dir, table, expected)
    }

    /// Opens a table folder directly.
    pub fn open_dir(dir: &Path, table: &str, expected: Option<SchemaRef>) -> Result<Self> {
        let entries = fs::read_dir(dir).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::InputNotReady {
                    table: table.to_owned(),
                    reason: format!("{} does not exist", dir.display()),
                }
            } else {
                Error::io(dir, e)
            }
        })?;
        let mut indexed = Vec::new();
        for entry in entries {
            let entry = entry.at(dir)?;
            let name = entry.file_name();
            if let Some(i) = name.to_str().and_then(parse_part_file_name) {
                indexed.push((i, entry.path()));
            }
        }
        indexed.sort();
        Ok(TableReader {
            table: table.to_owned(),
            dir: dir.to_path_buf(),
            parts: indexed.into_iter().map(|(_, p)| p).collect(),
            expected,
        })
    }

    /// The table folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Part file paths in index order.
    pub fn parts(&self) -> &[PathBuf] {
        &self.parts
    }

    /// Number of part files.
    pub fn num_parts(&self) -> usize {
        self.parts.len()
    }

    fn builder(&self, path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).at(path)?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| Error::Parquet {
                table: self.table.clone(),
                path: path.to_path_buf(),
                source,
            })?;
        if let Some(expected) = &self.expected {
            let got = builder.schema();
            for field in expected.fields() {
                match got.field_with_name(field.name()) {
                    Ok(f) if compatible(f.data_type(), field.data_type()) => {}
                    Ok(f) => {
                        return Err(Error::SchemaMismatch {
                            table: self.table.clone(),
                            path: path.to_path_buf(),
                            detail: format!(
                                "column {} is {}, expected {}",
                                field.name(),
                                f.data_type(),
                                field.data_type()
                            ),
                        });
                    }
                    Err(_) => {
                        return Err(Error::SchemaMismatch {
                            table: self.table.clone(),
                            path: path.to_path_buf(),
                            detail: format!("column {} is missing", field.name()),
                        });
                    }
                }
            }
        }
        Ok(builder)
    }

    /// Number of rows in part `index`, from its footer.
    pub fn part_rows(&self, index: usize) -> Result<u64> {
        let path = self.part_path(index)?;
        let builder = self.builder(&path)?;
        Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
    }

    /// Total rows over all parts, from the footers.
    pub fn num_rows(&self) -> Result<u64> {
        (0..self.parts.len()).map(|i| self.part_rows(i)).sum()
    }

    fn part_path(&self, index: usize) -> Result<PathBuf> {
        self.parts
            .get(index)
            .cloned()
            .ok_or_else(|| Error::InputNotReady {
                table: self.table.clone(),
                reason: format!("part {index} does not exist ({} parts)", self.parts.len()),
            })
    }

    /// Streams part `index`, projected to `columns` (all when `None`).
    pub fn read_part(
        &self,
        index: usize,
        columns: Option<&[&str]>,
        batch_size: usize,
    ) -> Result<PartBatches> {
        let path = self.part_path(index)?;
        let builder = self.builder(&path)?;
        let builder = match columns {
            Some(cols) => {
                let mask = ProjectionMask::columns(builder.parquet_schema(), cols.iter().copied());
                builder.with_projection(mask)
            }
            None => builder,
        };
        let reader = builder
            .with_batch_size(batch_size.max(1))
            .build()
            .map_err(|source| Error::Parquet {
                table: self.table.clone(),
                path: path.clone(),
                source,
            })?;
        Ok(PartBatches {
            table: self.table.clone(),
            path,
            reader,
        })
    }

    /// Streams every part in order.
    pub fn read_all(
        &self,
        columns: Option<&[&str]>,
        batch_size: usize,
    ) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        let owned: Option<Vec<String>> = columns.map(|c| c.iter().map(|s| s.to_string()).collect());
        (0..self.parts.len()).flat_map(move |i| {
            let cols: Option<Vec<&str>> = owned
                .as_ref()
                .map(|v| v.iter().map(String::as_str).collect());
            match self.read_part(i, cols.as_deref(), batch_size) {
                Ok(batches) => Box::new(batches) as Box<dyn Iterator<Item = Result<RecordBatch>>>,
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        })
    }
}

/// Whether a file's column type `got` reads as the declared `want`: equal, or the same up
/// to string layout (`Utf8`, `LargeUtf8`, `Utf8View`, as Polars and pyarrow may write) and
/// binary layout, also inside lists and structs. The table codecs accept every layout.
pub fn compatible(got: &DataType, want: &DataType) -> bool {
    use DataType as D;
    let string = |t: &DataType| matches!(t, D::Utf8 | D::LargeUtf8 | D::Utf8View);
    let binary = |t: &DataType| matches!(t, D::Binary | D::LargeBinary | D::BinaryView);
    match (got, want) {
        _ if got == want => true,
        (g, w) if string(g) && string(w) => true,
        (g, w) if binary(g) && binary(w) => true,
        (D::List(g), D::List(w)) => compatible(g.data_type(), w.data_type()),
        (D::Struct(g), D::Struct(w)) => w.iter().all(|wf| {
            g.iter()
                .find(|gf| gf.name() == wf.name())
                .is_some_and(|gf| compatible(gf.data_type(), wf.data_type()))
        }),
        _ => false,
    }
}

/// The record batches of one part file.
pub struct PartBatches {
    table: String,
    path: PathBuf,
    reader: ParquetRecordBatchReader,
}

impl Iterator for PartBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next().map(|r| {
            r.map_err(|source| Error::Parquet {
                table: self.table.clone(),
                path: self.path.clone(),
                source: parquet::errors::ParquetError::ArrowError(source.to_string()),
            })
        })
    }
}

/// Reads a whole small Parquet file (tests, reports).
pub fn read_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).at(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|source| Error::Parquet {
            table: path.display().to_string(),
            path: path.to_path_buf(),
            source,
        })?;
    reader
        .map(|b| {
            b.map_err(|e| Error::Parquet {
                table: path.display().to_string(),
                path: path.to_path_buf(),
                source: parquet::errors::ParquetError::ArrowError(e.to_string()),
            })
        })
        .collect()
}

/// Concatenates batches of one schema into one (small tables only).
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch], table: &str) -> Result<RecordBatch> {
    arrow_select::concat::concat_batches(schema, batches).map_err(|source| Error::Arrow {
        table: table.to_owned(),
        source,
    })
}

/// An `Arc`'d copy of a schema, for callers holding a plain `Schema`.
pub fn schema_ref(schema: Schema) -> SchemaRef {
    Arc::new(schema)
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]))
    }

    const DEF: TableDef = TableDef {
        name: "t",
        schema,
        row_group_rows: 2,
    };

    fn batch(ids: &[&str], ns: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(Int64Array::from(ns.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn writes_are_atomic_deterministic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let write = |out: &Path| {
            let mut w = PartWriter::create(out, &DEF, 3, "fp").unwrap();
            w.write(&batch(&["a", "b", "c"], &[1, 2, 3])).unwrap();
            assert!(out.join("t/.part-00003.parquet.tmp").exists());
            assert!(!out.join("t/part-00003.parquet").exists());
            w.commit().unwrap()
        };
        let a = write(&dir.path().join("a"));
        let b = write(&dir.path().join("b"));
        assert_eq!(a, b, "same rows must give the same bytes");
        assert_eq!(a.rows, 3);
        assert!(!dir.path().join("a/t/.part-00003.parquet.tmp").exists());

        let reader = TableReader::open(&dir.path().join("a"), "t", Some(schema())).unwrap();
        assert_eq!(reader.num_parts(), 1);
        assert_eq!(reader.num_rows().unwrap(), 3);
        let batches: Vec<RecordBatch> = reader
            .read_all(Some(&["n"]), 1024)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(batches[0].num_columns(), 1);
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 3);
        check_part("t", &dir.path().join("a/t"), &a, true).unwrap();
    }

    #[test]
    fn rejects_a_batch_with_the_wrong_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), &DEF, 0, "fp").unwrap();
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let err = w.write(&other).unwrap_err().to_string();
        assert!(err.contains("schema mismatch"), "{err}");
    }

    #[test]
    fn truncated_and_foreign_files_are_named_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), &DEF, 0, "fp").unwrap();
        w.write(&batch(&["a"], &[1])).unwrap();
        let part = w.commit().unwrap();
        let path = dir.path().join("t").join(&part.file);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let reader = TableReader::open(dir.path(), "t", None).unwrap();
        let err = reader
            .read_part(0, None, 10)
            .err()
            .expect("truncated file must fail")
            .to_string();
        assert!(err.contains("part-00000.parquet"), "{err}");
        let err = check_part("t", &dir.path().join("t"), &part, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("damaged") && err.contains("part-00000.parquet"),
            "{err}"
        );

        fs::write(&path, b"this is not parquet at all, just text").unwrap();
        let err = reader
            .read_part(0, None, 10)
            .err()
            .expect("foreign file must fail")
            .to_string();
        assert!(err.contains("part-00000.parquet"), "{err}");
    }

    #[test]
    fn schema_check_names_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), &DEF, 0, "fp").unwrap();
        w.write(&batch(&["a"], &[1])).unwrap();
        w.commit().unwrap();
        let wanted = Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)]));
        let reader = TableReader::open(dir.path(), "t", Some(wanted)).unwrap();
        let err = reader.read_part(0, None, 10).err().unwrap().to_string();
        assert!(err.contains("column n is Int64, expected Utf8"), "{err}");
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(parse_part_file_name(&part_file_name(42)), Some(42));
        assert_eq!(parse_part_file_name(".part-00001.parquet.tmp"), None);
        assert_eq!(parse_part_file_name("part-1.parquet"), None);
    }
}
