//! Round trips, other string layouts, nulls and wrong types for the table codecs.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, Int32Array, LargeStringArray, ListArray, RecordBatch, StringViewArray,
    StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema};

use super::{articles, generations, metrics, pairs, splits, subjects, train_log};
use crate::error::Error;
use crate::store::{PartWriter, TableReader, compatible, part_file_name, table_dir};

#[derive(Clone, Copy)]
enum Layout {
    Large,
    View,
}

/// `a` with every `Utf8` (also inside lists and structs) in `layout`, and the field types
/// to match; every field nullable, as Polars writes them.
fn relayout(a: &ArrayRef, layout: Layout) -> (ArrayRef, DataType) {
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            match layout {
                Layout::Large => (
                    Arc::new(s.iter().collect::<LargeStringArray>()),
                    DataType::LargeUtf8,
                ),
                Layout::View => (
                    Arc::new(s.iter().collect::<StringViewArray>()),
                    DataType::Utf8View,
                ),
            }
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let (cols, types): (Vec<ArrayRef>, Vec<DataType>) =
                s.columns().iter().map(|c| relayout(c, layout)).unzip();
            let fields: Fields = fields
                .iter()
                .zip(types)
                .map(|(f, t)| Field::new(f.name(), t, true))
                .collect();
            let out = StructArray::new(fields.clone(), cols, s.nulls().cloned());
            (Arc::new(out), DataType::Struct(fields))
        }
        DataType::List(item) => {
            let l = a.as_list::<i32>();
            let (values, t) = relayout(l.values(), layout);
            let field = Arc::new(Field::new(item.name(), t, true));
            let out = ListArray::new(
                field.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            );
            (Arc::new(out), DataType::List(field))
        }
        other => (a.clone(), other.clone()),
    }
}

fn relayout_batch(b: &RecordBatch, layout: Layout) -> RecordBatch {
    let (cols, fields): (Vec<ArrayRef>, Vec<Field>) = b
        .columns()
        .iter()
        .zip(b.schema().fields())
        .map(|(c, f)| {
            let (c, t) = relayout(c, layout);
            (c, Field::new(f.name(), t, true))
        })
        .unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// `b` with column `name` replaced by `col` (schema made nullable).
fn replace(b: &RecordBatch, name: &str, col: ArrayRef) -> RecordBatch {
    let (cols, fields): (Vec<ArrayRef>, Vec<Field>) = b
        .columns()
        .iter()
        .zip(b.schema().fields())
        .map(|(c, f)| {
            let c = if f.name() == name {
                col.clone()
            } else {
                c.clone()
            };
            let t = c.data_type().clone();
            (c, Field::new(f.name(), t, true))
        })
        .unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

fn subject(caption: &str, text: &str, kind: &str) -> subjects::Subject {
    let start = caption.find(text).unwrap() as u32;
    subjects::Subject {
        text: text.into(),
        start,
        end: start + text.len() as u32,
        weight: 1.21,
        kind: kind.into(),
    }
}

fn subject_rows() -> Vec<subjects::Row> {
    let cap = "Chancellor Angela Merkel arrives for talks in Brüssel.";
    vec![
        subjects::Row {
            id: "a".into(),
            caption: cap.into(),
            subjects: vec![
                subject(cap, "Angela Merkel", "person"),
                subject(cap, "Brüssel", "place"),
            ],
            raw: "{}".into(),
            backend: "heuristic".into(),
            model_id: "h1".into(),
            prompt_version: None,
            error_class: None,
            error_message: None,
        },
        subjects::Row {
            id: "b".into(),
            caption: "Paris at night".into(),
            subjects: vec![],
            raw: "not json".into(),
            backend: "gguf".into(),
            model_id: "sha".into(),
            prompt_version: Some("few-shot-v1".into()),
            error_class: Some("invalid_json".into()),
            error_message: Some("expected value".into()),
        },
    ]
}

#[test]
fn subjects_round_trip_in_every_string_layout() {
    let rows = subject_rows();
    let b = subjects::to_batch(&rows).unwrap();
    assert_eq!(b.schema(), subjects::schema());
    assert_eq!(subjects::from_batch(&b).unwrap(), rows);
    for layout in [Layout::Large, Layout::View] {
        assert_eq!(
            subjects::from_batch(&relayout_batch(&b, layout)).unwrap(),
            rows
        );
    }
    assert_eq!(subjects::to_batch(&[]).unwrap().num_rows(), 0);
}

#[test]
fn a_bad_subject_span_is_an_error_naming_the_row() {
    let good = subject_rows();
    let wants = [
        "holds",
        "not within",
        "empty span",
        "character boundaries",
        "unknown kind",
        "not positive",
    ];
    for (case, want) in wants.iter().enumerate() {
        let mut rows = good.clone();
        let s = &mut rows[0].subjects[1];
        match case {
            0 => s.start += 1,
            1 => s.end = 500,
            2 => s.end = s.start,
            // Inside the two-byte "ü".
            3 => s.end = s.start + 3,
            4 => s.kind = "animal".into(),
            _ => s.weight = f64::NAN,
        }
        let e = subjects::to_batch(&rows).unwrap_err();
        assert!(matches!(&e, Error::Row { id, .. } if id == "a"), "{e}");
        assert!(e.to_string().contains(want), "{want}: {e}");
        // A file holding the same row (written by another tool) fails the read alike.
        let bad = subjects::build(&rows).unwrap();
        let e = subjects::from_batch(&bad).unwrap_err();
        assert!(matches!(&e, Error::Row { id, .. } if id == "a"), "{e}");
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
}

#[test]
fn nulls_in_non_null_columns_and_wrong_types_name_the_table_column_and_row() {
    let rows = subject_rows();
    let b = subjects::to_batch(&rows).unwrap();
    let nulled = replace(
        &b,
        subjects::MODEL_ID,
        Arc::new(arrow_array::StringArray::from(vec![Some("h1"), None])),
    );
    let e = subjects::from_batch(&nulled).unwrap_err().to_string();
    assert!(
        e.contains("table subjects") && e.contains("column model_id") && e.contains("row 1"),
        "{e}"
    );
    let wrong = replace(&b, subjects::ID, Arc::new(Int32Array::from(vec![1, 2])));
    let e = subjects::from_batch(&wrong).unwrap_err().to_string();
    assert!(e.contains("column id") && e.contains("Int32"), "{e}");
    let missing = b.project(&[0, 1]).unwrap();
    assert!(
        subjects::from_batch(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
}

fn split_rows() -> Vec<splits::Row> {
    ["b", "a", "c", "d"]
        .iter()
        .zip(["train", "test", "train", "val"])
        .map(|(id, split)| splits::Row {
            id: (*id).into(),
            split: split.into(),
            subset: "entity".into(),
            outlet: "bbc".into(),
            group_key: (*id).into(),
            previous_split: (*id == "d").then(|| "train".to_owned()),
        })
        .collect()
}

#[test]
fn splits_round_trip_and_a_null_split_is_an_error() {
    let rows = split_rows();
    let b = splits::to_batch(&rows).unwrap();
    assert_eq!(splits::from_batch(&b).unwrap(), rows);
    assert_eq!(
        splits::from_batch(&relayout_batch(&b, Layout::View)).unwrap(),
        rows
    );
    let nulled = replace(
        &b,
        splits::SPLIT,
        Arc::new(arrow_array::StringArray::from(vec![
            Some("train"),
            None,
            None,
            None,
        ])),
    );
    let e = splits::from_batch(&nulled).unwrap_err().to_string();
    assert!(e.contains("column split") && e.contains("row 1"), "{e}");
}

/// Writes `batch` as part 0 of `table` under `out` with the batch's own schema (as another
/// tool would), bypassing the store's writer and its declared schema.
fn write_foreign(out: &std::path::Path, table: &str, batch: &RecordBatch) {
    let dir = table_dir(out, table);
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join(part_file_name(0))).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

#[test]
fn ids_in_split_reads_the_store_and_files_with_string_views() {
    let rows = split_rows();
    let tmp = tempfile::tempdir().unwrap();
    let mut w = PartWriter::create(tmp.path(), &splits::DEF, 0, "fp").unwrap();
    w.write(&splits::to_batch(&rows).unwrap()).unwrap();
    w.commit().unwrap();
    let r = TableReader::open(tmp.path(), splits::NAME, Some(splits::schema())).unwrap();
    let train: Vec<String> = splits::ids_in_split(&r, "train")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(train, ["b", "c"]);

    let views = tempfile::tempdir().unwrap();
    let b = relayout_batch(&splits::to_batch(&rows).unwrap(), Layout::View);
    write_foreign(views.path(), splits::NAME, &b);
    let r = TableReader::open(views.path(), splits::NAME, Some(splits::schema())).unwrap();
    let mut got = Vec::new();
    for batch in r.read_all(None, 16) {
        let batch = batch.unwrap();
        assert_eq!(batch.column(0).data_type(), &DataType::Utf8View);
        got.extend(splits::from_batch(&batch).unwrap());
    }
    assert_eq!(got, rows);
    let test: Vec<String> = splits::ids_in_split(&r, "test")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(test, ["a"]);
}

#[test]
fn metrics_and_train_log_round_trip() {
    let m = vec![
        metrics::Row {
            run: "default".into(),
            base: "b0".into(),
            configuration: "safe".into(),
            metric: "fid".into(),
            subset: "all".into(),
            outlet: "all".into(),
            topic: "all".into(),
            value: 12.5,
            std: None,
            n_generated: 10,
            n_reference: 9,
        },
        metrics::Row {
            run: "w1.331".into(),
            base: "b1".into(),
            configuration: "base".into(),
            metric: "kid".into(),
            subset: "entity".into(),
            outlet: "all".into(),
            topic: "sport".into(),
            value: 0.01,
            std: Some(0.002),
            n_generated: 3,
            n_reference: 4,
        },
    ];
    let b = metrics::to_batch(&m).unwrap();
    assert_eq!(b.schema(), metrics::schema());
    assert_eq!(
        metrics::from_batch(&relayout_batch(&b, Layout::Large)).unwrap(),
        m
    );
    let t = vec![train_log::Row {
        configuration: "lora".into(),
        step: 1,
        epoch: 0,
        loss: 0.25,
        lr: 1e-4,
        grad_norm: 3.0,
    }];
    let b = train_log::to_batch(&t).unwrap();
    assert_eq!(
        train_log::from_batch(&relayout_batch(&b, Layout::View)).unwrap(),
        t
    );
    let nulled = replace(
        &b,
        train_log::LOSS,
        Arc::new(arrow_array::Float64Array::from(vec![None::<f64>])),
    );
    let e = train_log::from_batch(&nulled).unwrap_err().to_string();
    assert!(
        e.contains("table train_log") && e.contains("column loss") && e.contains("row 0"),
        "{e}"
    );
}

#[test]
fn generations_articles_and_pairs_round_trip() {
    let g = vec![generations::Row {
        id: "a".into(),
        configuration: "lora+weighting".into(),
        seed: 7,
        steps: 20,
        guidance: 7.5,
        scheduler: "ddim".into(),
        prompt: "a photo".into(),
        split: "test".into(),
        subset: "entity".into(),
        outlet: "bbc".into(),
        topic: "science".into(),
        model_id: "m".into(),
        truncated: true,
        width: 64,
        height: 64,
        png: vec![137, 80, 78, 71],
        path: "lora+weighting/a-7.png".into(),
    }];
    let b = generations::to_batch(&g).unwrap();
    assert_eq!(b.schema(), generations::schema());
    assert_eq!(
        generations::from_batch(&relayout_batch(&b, Layout::View)).unwrap(),
        g
    );

    let a = vec![articles::Row {
        id: "a1".into(),
        outlet: "guardian".into(),
        source: "demo".into(),
        url: "http://127.0.0.1/a".into(),
        canonical_url: "http://127.0.0.1/a".into(),
        headline: Some("Headline".into()),
        published_at: None,
        section: None,
        authors: vec!["Jane Doe".into(), "John Roe".into()],
        adapter: Some("guardian-v1".into()),
        n_images: 2,
        status: "success".into(),
        error_class: None,
        error_message: None,
        http_status: Some(200),
    }];
    let b = articles::to_batch(&a).unwrap();
    assert_eq!(b.schema(), articles::schema());
    assert_eq!(articles::from_batch(&b).unwrap(), a);
    assert_eq!(
        articles::from_batch(&relayout_batch(&b, Layout::View)).unwrap(),
        a
    );

    let ok = pairs::Row {
        id: "p1".into(),
        article_id: "a1".into(),
        outlet: "guardian".into(),
        source: "demo".into(),
        article_url: "http://127.0.0.1/a".into(),
        image_url: "http://127.0.0.1/p.jpg".into(),
        position: 0,
        is_lead: true,
        caption: "Merkel".into(),
        credit: Some("Photo: X".into()),
        alt: None,
        bytes: Some(vec![255, 216, 255]),
        sha256: Some("ab".into()),
        width: Some(3),
        height: Some(2),
        content_type: Some("image/jpeg".into()),
        status: "success".into(),
        error_class: None,
        error_message: None,
        http_status: Some(200),
        attempts: 1,
    };
    let failed = pairs::Row {
        id: "p2".into(),
        position: 1,
        is_lead: false,
        bytes: None,
        sha256: None,
        width: None,
        height: None,
        status: "failed_to_download".into(),
        error_class: Some("http_404".into()),
        http_status: Some(404),
        ..ok.clone()
    };
    let p = vec![ok, failed];
    let b = pairs::to_batch(&p).unwrap();
    assert_eq!(b.schema(), pairs::schema());
    assert!(b.column_by_name(pairs::IMAGE).unwrap().is_null(1));
    assert_eq!(pairs::from_batch(&b).unwrap(), p);
    assert_eq!(
        pairs::from_batch(&relayout_batch(&b, Layout::Large)).unwrap(),
        p
    );
}

#[test]
fn string_and_binary_layouts_are_compatible_with_the_declared_schema() {
    assert!(compatible(&DataType::Utf8View, &DataType::Utf8));
    assert!(compatible(&DataType::LargeBinary, &DataType::Binary));
    assert!(!compatible(&DataType::Int32, &DataType::Utf8));
    let declared = subjects::schema();
    let field = declared.field_with_name(subjects::SUBJECTS).unwrap();
    let viewed = relayout_batch(&subjects::to_batch(&subject_rows()).unwrap(), Layout::View);
    let got = viewed.schema();
    let got = got.field_with_name(subjects::SUBJECTS).unwrap();
    assert_ne!(got.data_type(), field.data_type());
    assert!(compatible(got.data_type(), field.data_type()));
}

#[test]
fn kept_pairs_reads_the_wanted_kept_rows_and_refuses_the_rest() {
    use super::pairs_curated::{self as pc, KeptPair};
    use arrow_array::BooleanArray;
    let strings = |v: &[&str]| -> ArrayRef { Arc::new(StringViewArray::from(v.to_vec())) };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (pc::ID, strings(&["a", "b", "c"])),
        (
            pc::CAPTION,
            strings(&["A caption.", "B caption.", "C caption."]),
        ),
        (pc::SUBSET, strings(&["lead", "body", "lead"])),
        (pc::OUTLET, strings(&["bbc", "nyt", "bbc"])),
        (pc::TOPIC, strings(&["world", "sport", "other"])),
        (
            pc::KEPT,
            Arc::new(BooleanArray::from(vec![true, true, false])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_foreign(tmp.path(), pc::NAME, &batch);
    let r = TableReader::open(tmp.path(), pc::NAME, None).unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();

    let got = pc::kept_pairs(&r, &ids(&["b", "a"])).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        got["b"],
        KeptPair {
            id: "b".into(),
            caption: "B caption.".into(),
            subset: "body".into(),
            outlet: "nyt".into(),
            topic: "sport".into(),
        }
    );
    let e = pc::kept_pairs(&r, &ids(&["a", "c"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("row c") && e.contains("not kept"), "{e}");
    let e = pc::kept_pairs(&r, &ids(&["z"])).unwrap_err().to_string();
    assert!(e.contains("row z") && e.contains("has no row"), "{e}");

    // Every kept row, the unkept one left out.
    let all = pc::all_kept(&r).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(all["b"], got["b"]);

    // An id on two kept rows is an error, not a silent overwrite.
    let twice = RecordBatch::try_from_iter(vec![
        (pc::ID, strings(&["a", "a"])),
        (pc::CAPTION, strings(&["One.", "Two."])),
        (pc::SUBSET, strings(&["lead", "lead"])),
        (pc::OUTLET, strings(&["bbc", "bbc"])),
        (pc::TOPIC, strings(&["world", "world"])),
        (pc::KEPT, Arc::new(BooleanArray::from(vec![true, true]))),
    ])
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_foreign(tmp.path(), pc::NAME, &twice);
    let r = TableReader::open(tmp.path(), pc::NAME, None).unwrap();
    let e = pc::all_kept(&r).unwrap_err().to_string();
    assert!(e.contains("row a") && e.contains("two kept rows"), "{e}");
}

#[test]
fn split_of_maps_every_id_to_its_split() {
    use super::splits;
    let strings = |v: &[&str]| -> ArrayRef { Arc::new(StringViewArray::from(v.to_vec())) };
    let batch = RecordBatch::try_from_iter(vec![
        (splits::ID, strings(&["b", "a", "c"])),
        (splits::SPLIT, strings(&["test", "train", "test"])),
    ])
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_foreign(tmp.path(), splits::NAME, &batch);
    let r = TableReader::open(tmp.path(), splits::NAME, None).unwrap();
    let of = splits::split_of(&r).unwrap();
    assert_eq!(of["a"], "train");
    assert_eq!(of["b"], "test");
    let test: Vec<String> = splits::ids_in_split(&r, "test")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(test, ["b", "c"]);
}
