//! Subject metrics: the annotated subject phrases of each test pair, embedded by CLIP,
//! and the hit threshold calibrated on the real test images.

use std::collections::{BTreeSet, HashMap};

use anchor_clip::ClipModel;
use anchor_core::columns::Columns;
use anchor_core::step::StepCtx;
use anchor_core::tables::{pairs as pairs_t, subjects as subj_t};

use super::{CHUNK, EvalStep, Scored};
use crate::clip_score::clip_score;
use crate::{Error, Result};

/// The annotated subjects with their CLIP text embeddings, and the hit threshold.
#[derive(Debug)]
pub(super) struct Subjects {
    pub(super) by_id: HashMap<String, Vec<String>>,
    pub(super) embeddings: HashMap<String, Vec<f32>>,
    pub(super) threshold: f64,
    /// Real images the threshold was calibrated on (0 when given).
    pub(super) calibrated_on: usize,
}

impl EvalStep {
    /// Reads `subjects`, embeds every distinct phrase and fixes the threshold.
    pub(super) fn subjects(
        &self,
        ctx: &StepCtx,
        clip: &ClipModel,
        real: &Scored,
    ) -> Result<Subjects> {
        let t = subj_t::NAME;
        let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
        // The codec checks every span; eval uses the phrases only.
        for row in subj_t::read(&ctx.reader(t)?)? {
            let phrases: Vec<String> = row
                .subjects
                .into_iter()
                .map(|s| s.text)
                .filter(|p| !p.trim().is_empty())
                .collect();
            if !phrases.is_empty() {
                by_id.insert(row.id, phrases);
            }
        }
        let distinct: BTreeSet<&str> = by_id.values().flatten().map(String::as_str).collect();
        let distinct: Vec<&str> = distinct.into_iter().collect();
        let mut embeddings = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(CHUNK) {
            for (p, e) in chunk.iter().zip(clip.text_embeddings(chunk)?) {
                embeddings.insert((*p).to_owned(), e);
            }
        }
        let mut subjects = Subjects {
            by_id,
            embeddings,
            threshold: 0.0,
            calibrated_on: 0,
        };
        if let Some(t) = self.params.subject_threshold {
            subjects.threshold = t;
            return Ok(subjects);
        }
        let Some(real_clip) = &real.clip else {
            return Err(Error::Shape(
                "subject metrics without CLIP image features".into(),
            ));
        };
        // Real images with subjects, in table order; each is matched with its own
        // subjects and mismatched with the next one's.
        let with: Vec<usize> = (0..real.ids.len())
            .filter(|&i| subjects.by_id.contains_key(&real.ids[i]))
            .collect();
        let (mut matched, mut mismatched) = (Vec::new(), Vec::new());
        for (k, &i) in with.iter().enumerate() {
            let other = with[(k + 1) % with.len()];
            if other == i {
                continue;
            }
            matched.extend(subjects.similarities(real_clip.row(i), &real.ids[i])?);
            mismatched.extend(subjects.similarities(real_clip.row(i), &real.ids[other])?);
        }
        subjects.threshold =
            calibrate_threshold(&matched, &mismatched).ok_or_else(|| Error::Table {
                table: t.into(),
                detail: "fewer than 2 real test images have subjects: the subject hit-rate \
                         threshold cannot be calibrated (give --subset-threshold)"
                    .into(),
            })?;
        subjects.calibrated_on = with.len();
        Ok(subjects)
    }

    /// CLIP text embeddings of the captions (`pairs.caption`) of `wanted` ids.
    pub(super) fn caption_embeddings(
        &self,
        ctx: &StepCtx,
        wanted: &BTreeSet<&str>,
        embed: impl Fn(&[&str]) -> Result<Vec<Vec<f32>>>,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut captions: Vec<(String, String)> = Vec::with_capacity(wanted.len());
        self.each_caption(ctx, |id, text| {
            if wanted.contains(id) {
                captions.push((id.to_owned(), text.to_owned()));
            }
        })?;
        let found: BTreeSet<&str> = captions.iter().map(|(id, _)| id.as_str()).collect();
        if let Some(id) = wanted.iter().find(|id| !found.contains(*id)) {
            return Err(Error::Table {
                table: pairs_t::NAME.into(),
                detail: format!("generated image of pair {id} has no pair (and so no caption)"),
            });
        }
        let mut out = HashMap::with_capacity(captions.len());
        for chunk in captions.chunks(CHUNK) {
            let texts: Vec<&str> = chunk.iter().map(|(_, c)| c.as_str()).collect();
            let emb = embed(&texts)?;
            for ((id, _), e) in chunk.iter().zip(emb) {
                out.insert(id.clone(), e);
            }
        }
        Ok(out)
    }
}

impl EvalStep {
    /// Every pair's caption, by pair id.
    pub(super) fn captions_by_id(&self, ctx: &StepCtx) -> Result<HashMap<String, String>> {
        let mut captions = HashMap::new();
        self.each_caption(ctx, |id, text| {
            captions.insert(id.to_owned(), text.to_owned());
        })?;
        Ok(captions)
    }

    /// Calls `visit` with each pair's id and caption.
    fn each_caption(&self, ctx: &StepCtx, mut visit: impl FnMut(&str, &str)) -> Result<()> {
        let t = pairs_t::NAME;
        let reader = ctx.reader(t)?;
        for batch in reader.read_all(Some(&[pairs_t::ID, pairs_t::CAPTION]), 8192) {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let ids = c.strings(pairs_t::ID)?;
            let caption = c.strings(pairs_t::CAPTION)?;
            for i in 0..batch.num_rows() {
                let id = c.required(pairs_t::ID, i, ids.get(i))?;
                visit(id, c.required(pairs_t::CAPTION, i, caption.get(i))?);
            }
        }
        Ok(())
    }
}

impl Subjects {
    /// CLIP scores of `image` with each subject phrase of pair `id` (none when it has none).
    pub(super) fn similarities(&self, image: &[f32], id: &str) -> Result<Vec<f64>> {
        let Some(phrases) = self.by_id.get(id) else {
            return Ok(Vec::new());
        };
        phrases
            .iter()
            .map(|p| {
                let e = self
                    .embeddings
                    .get(p)
                    .ok_or_else(|| Error::Shape(format!("no embedding for subject {p:?}")))?;
                clip_score(image, e)
            })
            .collect()
    }
}

/// The subject hit-rate threshold calibrated on real images: the value that best
/// separates real images' similarity to their own subjects (`matched`) from their
/// similarity to another caption's subjects (`mismatched`), i.e. the candidate `c`
/// maximising `P(matched ≥ c) − P(mismatched ≥ c)` (Youden's J), the smallest on ties.
/// `None` when either side is empty.
pub fn calibrate_threshold(matched: &[f64], mismatched: &[f64]) -> Option<f64> {
    if matched.is_empty() || mismatched.is_empty() {
        return None;
    }
    let mut candidates: Vec<f64> = matched.iter().chain(mismatched).copied().collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let frac = |xs: &[f64], c: f64| xs.iter().filter(|&&x| x >= c).count() as f64 / xs.len() as f64;
    let mut best = (f64::NEG_INFINITY, candidates[0]);
    for &c in &candidates {
        let j = frac(matched, c) - frac(mismatched, c);
        if j > best.0 {
            best = (j, c);
        }
    }
    Some(best.1)
}

/// Mean and population standard deviation (ddof 0) of `xs` (non-empty).
pub(super) fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_separates_matched_from_mismatched() {
        // Perfectly separable: any value in (20, 30] works; the smallest candidate
        // with the best J is the lowest matched score.
        let t = calibrate_threshold(&[30.0, 35.0, 40.0], &[10.0, 15.0, 20.0]).unwrap();
        assert_eq!(t, 30.0);
        // Overlap: 22, 25 and 40 all reach J = 1/3 (22 keeps every matched score
        // and 2/3 of the mismatched); ties go to the smallest.
        let t = calibrate_threshold(&[22.0, 25.0, 40.0], &[10.0, 24.0, 30.0]).unwrap();
        assert_eq!(t, 22.0);
        let t = calibrate_threshold(&[22.0, 25.0, 40.0], &[10.0, 23.0, 24.0]).unwrap();
        assert_eq!(t, 25.0);
        assert!(calibrate_threshold(&[], &[1.0]).is_none());
        assert!(calibrate_threshold(&[1.0], &[]).is_none());
    }

    #[test]
    fn mean_and_population_std() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
