//! The captions to sample: kept `pairs_curated` rows of one `splits` split, with their
//! `subjects`, sorted by id.

use std::collections::{BTreeMap, BTreeSet};

use anchor_core::step::StepCtx;
use anchor_core::tables::{pairs_curated, splits, subjects};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::error::{Error, Result};

const BATCH: usize = 4096;

/// A subject of a caption: its exact text, UTF-8 byte span and annotator weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The caption's text at `start..end`.
    pub text: String,
    /// Byte offset where it starts.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
    /// compel weight from the annotator.
    pub weight: f32,
}

/// What the `subjects` table said about a caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectsNote {
    /// A row whose caption matches; subjects whose span is not the stated text were dropped.
    Found,
    /// No `subjects` row for this id.
    NoRow,
    /// The row annotated a different caption text (the dataset changed since annotate).
    CaptionChanged,
}

/// One caption to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    /// `pairs.id`.
    pub id: String,
    /// The cleaned caption.
    pub caption: String,
    /// Its split.
    pub split: String,
    /// `entity` or `non_entity`.
    pub subset: String,
    /// Outlet name.
    pub outlet: String,
    /// Valid subjects in caption order.
    pub subjects: Vec<Subject>,
    /// How the subjects were found.
    pub note: SubjectsNote,
    /// Subjects dropped because their span did not hold their text.
    pub bad_spans: u64,
}

fn column<'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    col: &'static str,
) -> Result<&'a ArrayRef> {
    batch.column_by_name(col).ok_or(Error::Input {
        table,
        column: col,
        detail: "missing".into(),
    })
}

/// A string column as owned values (Utf8, LargeUtf8 or the Utf8View Polars writes).
fn strings(
    batch: &RecordBatch,
    table: &'static str,
    col: &'static str,
) -> Result<Vec<Option<String>>> {
    let a = column(batch, table, col)?;
    let get = |i: usize| -> Option<String> {
        if a.is_null(i) {
            return None;
        }
        match a.data_type() {
            DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.value(i).to_owned()),
            DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.value(i).to_owned()),
            DataType::Utf8View => a.as_string_view_opt().map(|s| s.value(i).to_owned()),
            _ => None,
        }
    };
    if !matches!(
        a.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Err(Error::Input {
            table,
            column: col,
            detail: format!("expected a string column, found {}", a.data_type()),
        });
    }
    Ok((0..a.len()).map(get).collect())
}

fn required(
    v: Option<String>,
    table: &'static str,
    col: &'static str,
    row: usize,
) -> Result<String> {
    v.ok_or_else(|| Error::Input {
        table,
        column: col,
        detail: format!("null in row {row}"),
    })
}

fn read_batches(
    ctx: &StepCtx,
    table: &'static str,
    cols: Option<&[&str]>,
) -> Result<Vec<RecordBatch>> {
    let reader = ctx.reader(table)?;
    reader
        .read_all(cols, BATCH)
        .map(|b| b.map_err(Error::from))
        .collect()
}

/// The captions of split `split` (kept pairs only), sorted by id, at most `max` of them
/// (the first by id; ids are hashes, so this is an unbiased sample).
pub fn load_captions(ctx: &StepCtx, split: &str, max: Option<usize>) -> Result<Vec<Caption>> {
    let mut in_split: BTreeSet<String> = BTreeSet::new();
    for batch in read_batches(ctx, splits::NAME, Some(&[splits::ID, splits::SPLIT]))? {
        let ids = strings(&batch, splits::NAME, splits::ID)?;
        let sp = strings(&batch, splits::NAME, splits::SPLIT)?;
        for (row, (id, s)) in ids.into_iter().zip(sp).enumerate() {
            if s.as_deref() == Some(split) {
                in_split.insert(required(id, splits::NAME, splits::ID, row)?);
            }
        }
    }
    let mut captions: BTreeMap<String, Caption> = BTreeMap::new();
    let cols = [
        pairs_curated::ID,
        pairs_curated::CAPTION,
        pairs_curated::SUBSET,
        pairs_curated::OUTLET,
        pairs_curated::KEPT,
    ];
    for batch in read_batches(ctx, pairs_curated::NAME, Some(&cols))? {
        let t = pairs_curated::NAME;
        let ids = strings(&batch, t, pairs_curated::ID)?;
        let caps = strings(&batch, t, pairs_curated::CAPTION)?;
        let subsets = strings(&batch, t, pairs_curated::SUBSET)?;
        let outlets = strings(&batch, t, pairs_curated::OUTLET)?;
        let kept = column(&batch, t, pairs_curated::KEPT)?
            .as_boolean_opt()
            .ok_or_else(|| Error::Input {
                table: t,
                column: pairs_curated::KEPT,
                detail: "expected a boolean column".into(),
            })?;
        for row in 0..batch.num_rows() {
            if !kept.is_valid(row) || !kept.value(row) {
                continue;
            }
            let id = required(ids[row].clone(), t, pairs_curated::ID, row)?;
            if !in_split.contains(&id) {
                continue;
            }
            captions.insert(
                id.clone(),
                Caption {
                    id,
                    caption: required(caps[row].clone(), t, pairs_curated::CAPTION, row)?,
                    split: split.to_owned(),
                    subset: required(subsets[row].clone(), t, pairs_curated::SUBSET, row)?,
                    outlet: required(outlets[row].clone(), t, pairs_curated::OUTLET, row)?,
                    subjects: Vec::new(),
                    note: SubjectsNote::NoRow,
                    bad_spans: 0,
                },
            );
        }
    }
    let mut captions: Vec<Caption> = captions.into_values().collect();
    if let Some(n) = max {
        captions.truncate(n);
    }
    let index: BTreeMap<String, usize> = captions
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    for batch in read_batches(ctx, subjects::NAME, None)? {
        attach_subjects(&batch, &index, &mut captions)?;
    }
    Ok(captions)
}

fn attach_subjects(
    batch: &RecordBatch,
    index: &BTreeMap<String, usize>,
    captions: &mut [Caption],
) -> Result<()> {
    let t = subjects::NAME;
    let ids = strings(batch, t, subjects::ID)?;
    let caps = strings(batch, t, subjects::CAPTION)?;
    let bad = |detail: String| Error::Input {
        table: t,
        column: subjects::SUBJECTS,
        detail,
    };
    let lists = column(batch, t, subjects::SUBJECTS)?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad("expected a list column".into()))?;
    for row in 0..batch.num_rows() {
        let Some(&ci) = ids[row].as_ref().and_then(|id| index.get(id)) else {
            continue;
        };
        let c = &mut captions[ci];
        if caps[row].as_deref() != Some(c.caption.as_str()) {
            c.note = SubjectsNote::CaptionChanged;
            continue;
        }
        c.note = SubjectsNote::Found;
        if lists.is_null(row) {
            continue;
        }
        let items = lists.value(row);
        let s = items
            .as_struct_opt()
            .ok_or_else(|| bad("list items are not structs".into()))?;
        let field = |name: &'static str| {
            s.column_by_name(name)
                .ok_or_else(|| bad(format!("subject field {name} is missing")))
        };
        let texts = field(subjects::SUBJECT_TEXT)?;
        let texts = texts
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("subject text is not Utf8".into()))?;
        let starts = field(subjects::SUBJECT_START)?;
        let starts = starts
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("subject start is not UInt32".into()))?;
        let ends = field(subjects::SUBJECT_END)?;
        let ends = ends
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("subject end is not UInt32".into()))?;
        let weights = field(subjects::SUBJECT_WEIGHT)?;
        let weights = weights
            .as_primitive_opt::<arrow_array::types::Float64Type>()
            .ok_or_else(|| bad("subject weight is not Float64".into()))?;
        for j in 0..s.len() {
            let (start, end) = (starts.value(j) as usize, ends.value(j) as usize);
            let text = texts.value(j);
            // A span that does not hold its text would weight the wrong tokens.
            if c.caption.get(start..end) != Some(text) || text.is_empty() {
                c.bad_spans += 1;
                continue;
            }
            c.subjects.push(Subject {
                text: text.to_owned(),
                start,
                end,
                weight: weights.value(j) as f32,
            });
        }
        c.subjects.sort_by_key(|s| (s.start, s.end));
    }
    Ok(())
}
