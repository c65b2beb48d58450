//! Tables written by pyarrow with `string_view` columns (arrow-rs reads them back as
//! `Utf8View`) and `large_string` ones pass the store's schema check and decode through the
//! table codecs. Needs
//! `ANCHOR_PYTHON` (set by `make test`).

use std::process::Command;

use anchor_core::store::TableReader;
use anchor_core::tables::{self, splits, subjects};
use arrow_schema::DataType;

const SCRIPT: &str = r#"
import sys, pathlib
import pyarrow as pa, pyarrow.parquet as pq
out = pathlib.Path(sys.argv[1])
sv = pa.string_view()
splits = pa.table({
    "id": pa.array(["a", "b", "c"], sv),
    "split": pa.array(["train", "test", "train"], sv),
    "subset": pa.array(["entity"] * 3, sv),
    "outlet": pa.array(["bbc"] * 3, sv),
    "group_key": pa.array(["a", "b", "c"], sv),
    "previous_split": pa.array([None, None, "val"], sv),
})
# pyarrow writes no string_view inside a list, so the subjects' own strings are large.
ls = pa.large_string()
item = pa.struct([("text", ls), ("start", pa.uint32()), ("end", pa.uint32()),
                  ("weight", pa.float64()), ("kind", ls)])
cap = "Angela Merkel in Brüssel"
def subjects(rows):
    return pa.table({
        "id": pa.array([r[0] for r in rows], sv),
        "caption": pa.array([cap] * len(rows), sv),
        "subjects": pa.array([r[1] for r in rows], pa.list_(item)),
        "raw": pa.array(["{}"] * len(rows), sv),
        "backend": pa.array(["heuristic"] * len(rows), sv),
        "model_id": pa.array(["h"] * len(rows), sv),
        "prompt_version": pa.array([None] * len(rows), sv),
        "error_class": pa.array([None] * len(rows), sv),
        "error_message": pa.array([None] * len(rows), sv),
    })
good = [("a", [{"text": "Angela Merkel", "start": 0, "end": 13, "weight": 1.21, "kind": "person"},
               {"text": "Brüssel", "start": 17, "end": 25, "weight": 1.1, "kind": "place"}]),
        ("b", [])]
bad = [("z", [{"text": "Merkel", "start": 0, "end": 6, "weight": 1.1, "kind": "person"}])]
for name, table in [("splits", splits), ("subjects", subjects(good)), ("bad/subjects", subjects(bad))]:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, d / "part-00000.parquet")
"#;

#[test]
fn pyarrow_string_views_read_through_the_codecs() {
    let python = match std::env::var("ANCHOR_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!("skipping: ANCHOR_PYTHON not set");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());

    let r = TableReader::open(tmp.path(), splits::NAME, Some(splits::schema())).unwrap();
    let first = r.read_all(None, 16).next().unwrap().unwrap();
    assert_eq!(
        first.column_by_name(splits::ID).unwrap().data_type(),
        &DataType::Utf8View
    );
    let train: Vec<String> = splits::ids_in_split(&r, "train")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(train, ["a", "c"]);
    let rows = splits::from_batch(&first).unwrap();
    assert_eq!(rows[2].previous_split.as_deref(), Some("val"));

    let r = TableReader::open(tmp.path(), subjects::NAME, Some(subjects::schema())).unwrap();
    let rows = subjects::read(&r).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].subjects[1].text, "Brüssel");
    assert_eq!(rows[0].subjects[1].start, 17);
    assert!(rows[1].subjects.is_empty());

    let r = TableReader::open(
        &tmp.path().join("bad"),
        subjects::NAME,
        tables::lookup(subjects::NAME).map(|t| (t.schema)()),
    )
    .unwrap();
    let e = subjects::read(&r).unwrap_err().to_string();
    assert!(e.contains("row z") && e.contains("holds"), "{e}");
}
