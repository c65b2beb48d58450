//! The captions to sample: kept `pairs_curated` rows of one `splits` split, with their
//! `subjects`, sorted by id.

use std::collections::BTreeMap;

use anchor_core::step::StepCtx;
use anchor_core::tables::{pairs_curated, splits, subjects};

use crate::error::Result;

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
    /// The article's topic.
    pub topic: String,
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
    let captions = pairs_curated::kept_pairs(&ctx.reader(pairs_curated::NAME)?, &in_split)?;
    let captions = captions.into_values().map(|pair| Caption {
        id: pair.id,
        caption: pair.caption,
        split: split.to_owned(),
        subset: pair.subset,
        outlet: pair.outlet,
        topic: pair.topic,
        subjects: Vec::new(),
        note: SubjectsNote::NoRow,
    });
    let mut captions: Vec<Caption> = captions.collect();
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
