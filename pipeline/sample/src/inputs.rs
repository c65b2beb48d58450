//! The captions to sample: kept `pairs_curated` rows of one `splits` split, with their
//! `subjects`, sorted by id.

use std::collections::BTreeMap;

use anchor_core::columns::Columns;
use anchor_core::step::StepCtx;
use anchor_core::tables::{pairs_curated, splits, subjects};
use arrow_array::Array;

use crate::error::Result;

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
    /// A row whose caption matches.
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
    /// Subjects in caption order.
    pub subjects: Vec<Subject>,
    /// How the subjects were found.
    pub note: SubjectsNote,
}

/// The captions of split `split` (kept pairs only), sorted by id, at most `max` of them
/// (the first by id; ids are hashes, so this is an unbiased sample). A subject whose span
/// does not hold its text fails the read, naming the row
/// ([`anchor_core::tables::subjects::check_subject`]).
pub fn load_captions(ctx: &StepCtx, split: &str, max: Option<usize>) -> Result<Vec<Caption>> {
    let in_split = splits::ids_in_split(&ctx.reader(splits::NAME)?, split)?;
    let mut captions: BTreeMap<String, Caption> = BTreeMap::new();
    let cols = [
        pairs_curated::ID,
        pairs_curated::CAPTION,
        pairs_curated::SUBSET,
        pairs_curated::OUTLET,
        pairs_curated::KEPT,
    ];
    for batch in ctx
        .reader(pairs_curated::NAME)?
        .read_all(Some(&cols), BATCH)
    {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_curated::NAME);
        let ids = c.strings(pairs_curated::ID)?;
        let caps = c.strings(pairs_curated::CAPTION)?;
        let subsets = c.strings(pairs_curated::SUBSET)?;
        let outlets = c.strings(pairs_curated::OUTLET)?;
        let kept = c.boolean(pairs_curated::KEPT)?;
        for row in 0..batch.num_rows() {
            if !kept.is_valid(row) || !kept.value(row) {
                continue;
            }
            let id = c.required(pairs_curated::ID, row, ids.get(row))?;
            if !in_split.contains(id) {
                continue;
            }
            captions.insert(
                id.to_owned(),
                Caption {
                    id: id.to_owned(),
                    caption: c
                        .required(pairs_curated::CAPTION, row, caps.get(row))?
                        .to_owned(),
                    split: split.to_owned(),
                    subset: c
                        .required(pairs_curated::SUBSET, row, subsets.get(row))?
                        .to_owned(),
                    outlet: c
                        .required(pairs_curated::OUTLET, row, outlets.get(row))?
                        .to_owned(),
                    subjects: Vec::new(),
                    note: SubjectsNote::NoRow,
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
    attach_subjects(
        subjects::read(&ctx.reader(subjects::NAME)?)?,
        &index,
        &mut captions,
    );
    Ok(captions)
}

fn attach_subjects(
    rows: Vec<subjects::Row>,
    index: &BTreeMap<String, usize>,
    captions: &mut [Caption],
) {
    for row in rows {
        let Some(&ci) = index.get(&row.id) else {
            continue;
        };
        let c = &mut captions[ci];
        if row.caption != c.caption {
            c.note = SubjectsNote::CaptionChanged;
            continue;
        }
        c.note = SubjectsNote::Found;
        c.subjects.extend(row.subjects.into_iter().map(|s| Subject {
            start: s.start as usize,
            end: s.end as usize,
            weight: s.weight as f32,
            text: s.text,
        }));
        c.subjects.sort_by_key(|s| (s.start, s.end));
    }
}
