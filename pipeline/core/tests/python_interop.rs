//! The Parquet the store writes is read by Python Polars, pandas and pyarrow
//! with the documented schema. Needs `ANCHOR_PYTHON` (set by `make test`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use anchor_core::store::PartWriter;
use anchor_core::tables::{self, articles, pairs};
use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::NullBuffer;

fn python() -> Option<String> {
    match std::env::var("ANCHOR_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("skipping: ANCHOR_PYTHON not set");
            None
        }
    }
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn pairs_batch() -> RecordBatch {
    let mut bytes = BinaryBuilder::new();
    bytes.append_value(b"\xff\xd8\xff\xe0 not really a jpeg");
    bytes.append_null();
    let paths = StringArray::from(vec![Some("photo.jpg"), None]);
    let image = StructArray::new(
        tables::image_fields(),
        vec![Arc::new(bytes.finish()), Arc::new(paths)],
        Some(NullBuffer::from(vec![true, false])),
    );
    let columns: Vec<ArrayRef> = vec![
        strings(&[Some("00000000000000aa"), Some("00000000000000bb")]),
        strings(&[Some("a1"), Some("a1")]),
        strings(&[Some("guardian"), Some("guardian")]),
        strings(&[Some("demo"), Some("demo")]),
        strings(&[Some("http://127.0.0.1/a"), Some("http://127.0.0.1/a")]),
        strings(&[
            Some("http://127.0.0.1/photo.jpg"),
            Some("http://127.0.0.1/gone.jpg"),
        ]),
        Arc::new(Int32Array::from(vec![0, 1])),
        Arc::new(BooleanArray::from(vec![true, false])),
        strings(&[
            Some("Chancellor Angela Merkel arrives in Brussels"),
            Some(""),
        ]),
        strings(&[Some("Photograph: A. Photographer"), None]),
        strings(&[Some("Merkel"), None]),
        Arc::new(image),
        strings(&[Some("ab"), None]),
        Arc::new(Int64Array::from(vec![Some(27), None])),
        Arc::new(Int32Array::from(vec![Some(640), None])),
        Arc::new(Int32Array::from(vec![Some(480), None])),
        strings(&[Some("image/jpeg"), None]),
        strings(&[Some("success"), Some("failed_to_download")]),
        strings(&[None, Some("http_404")]),
        strings(&[None, Some("404 Not Found")]),
        Arc::new(Int32Array::from(vec![Some(200), Some(404)])),
        Arc::new(Int32Array::from(vec![1, 1])),
    ];
    RecordBatch::try_new(pairs::schema(), columns).unwrap()
}

fn articles_batch() -> RecordBatch {
    let mut authors = ListBuilder::new(StringBuilder::new());
    authors.values().append_value("Jane Doe");
    authors.values().append_value("John Roe");
    authors.append(true);
    let columns: Vec<ArrayRef> = vec![
        strings(&[Some("a1")]),
        strings(&[Some("guardian")]),
        strings(&[Some("demo")]),
        strings(&[Some("http://127.0.0.1/a")]),
        strings(&[Some("http://127.0.0.1/a")]),
        strings(&[Some("Headline")]),
        strings(&[Some("2024-02-24T10:00:00+00:00")]),
        strings(&[Some("world")]),
        Arc::new(authors.finish()),
        strings(&[Some("guardian/2024")]),
        Arc::new(Int32Array::from(vec![2])),
        strings(&[Some("success")]),
        strings(&[None]),
        strings(&[None]),
        Arc::new(Int32Array::from(vec![Some(200)])),
    ];
    RecordBatch::try_new(articles::schema(), columns).unwrap()
}

#[test]
fn polars_pandas_and_pyarrow_read_the_store() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut w = PartWriter::create(dir.path(), &pairs::DEF, 0, "fp").unwrap();
    w.write(&pairs_batch()).unwrap();
    w.commit().unwrap();
    let mut w = PartWriter::create(dir.path(), &articles::DEF, 0, "fp").unwrap();
    w.write(&articles_batch()).unwrap();
    w.commit().unwrap();

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/check_store_interop.py");
    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let output = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .arg(&schemas)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python interop check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok pairs") && stdout.contains("ok articles"),
        "{stdout}"
    );
}
