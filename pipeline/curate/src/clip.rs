//! The optional CLIP scores of the `score` step: image–caption similarity and CLIP-IQA, from a
//! transformers CLIP folder the user brings (`anchor-clip` runs it).
//!
//! - `clip_similarity`: the cosine of the projected image embedding and the projected text
//!   embedding of the caption (CLIP BPE, 77 tokens, truncated with the end token kept).
//! - `clip_iqa`: `torchmetrics.functional.multimodal.clip_image_quality_assessment` with its
//!   default prompt pair ("Good photo.", "Bad photo."): both embeddings L2-normalised, logits
//!   `100 × cosine` (torchmetrics' fixed 100, not the model's `logit_scale`), softmax over the
//!   two prompts, the probability of the first.
//!
//! Without weights nothing here runs and both columns stay null; the CLI says so.

use anchor_clip::{Clip, ClipWeights};
use image::DynamicImage;
use serde::Serialize;

use crate::Error;

/// torchmetrics' `_PROMPTS["quality"]`: the positive prompt first.
pub const IQA_PROMPTS: [&str; 2] = ["Good photo.", "Bad photo."];
/// torchmetrics multiplies cosines by this fixed factor before the softmax.
pub const IQA_LOGIT_SCALE: f64 = 100.0;
/// Images held decoded before a CLIP forward pass (anchor-clip's own batch size): enough to
/// batch, few enough that full-size decoded photos never pile up in memory.
pub const IMAGE_BATCH: usize = 16;

/// What the score step's CLIP columns are computed with: the weights and the fixed texts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipScoring {
    /// The CLIP folder and its hashes.
    #[serde(flatten)]
    pub weights: ClipWeights,
    /// The IQA prompt pair (fixed; recorded so that a change would re-run the step).
    pub iqa_prompts: [&'static str; 2],
    /// The text `clip_similarity` compares the image with.
    pub similarity_text: &'static str,
}

impl ClipScoring {
    /// Scores with `weights`, the IQA prompts and the `pairs` caption.
    pub fn new(weights: ClipWeights) -> Self {
        ClipScoring {
            weights,
            iqa_prompts: IQA_PROMPTS,
            similarity_text: "pairs.caption",
        }
    }
}

/// The CLIP scores of one image.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ClipScores {
    /// Cosine of image and caption; `None` without a caption.
    pub similarity: Option<f32>,
    /// CLIP-IQA probability of "Good photo.".
    pub iqa: f32,
}

/// A loaded CLIP with the IQA prompt embeddings computed once.
pub struct ClipScorer {
    clip: Clip,
    anchors: [Vec<f64>; 2],
}

impl std::fmt::Debug for ClipScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipScorer")
            .field("clip", &self.clip)
            .finish_non_exhaustive()
    }
}

fn normalized(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    // A zero embedding has no direction; keeping it zero makes every cosine 0 instead of NaN.
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    v.iter().map(|&x| f64::from(x) * scale).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// CLIP-IQA from the two cosines: the softmax's first entry, written as a logistic so that
/// large logit gaps neither overflow nor lose the small side.
pub fn iqa_probability(cos_good: f64, cos_bad: f64) -> f64 {
    1.0 / (1.0 + (IQA_LOGIT_SCALE * (cos_bad - cos_good)).exp())
}

impl ClipScorer {
    /// Loads `weights` and checks that the file is still the one that was hashed.
    pub fn load(weights: &ClipWeights) -> Result<Self, Error> {
        Self::from_clip(weights.load().map_err(clip_error)?)
    }

    /// Wraps a loaded CLIP.
    pub fn from_clip(clip: Clip) -> Result<Self, Error> {
        let prompts = clip.text_embeddings(&IQA_PROMPTS).map_err(clip_error)?;
        let [good, bad] = [0, 1].map(|i| prompts.get(i).map(|e| normalized(e)));
        match (good, bad) {
            (Some(good), Some(bad)) => Ok(ClipScorer {
                clip,
                anchors: [good, bad],
            }),
            _ => Err(Error::Config(
                "CLIP returned fewer text embeddings than prompts".into(),
            )),
        }
    }

    /// Text embeddings as [`Clip::text_embeddings`] gives them, computed on the batch's
    /// tokens up to its longest end token instead of all 77 positions: CLIP's text attention
    /// is causal and pools at the end token, so later (padding) positions never reach the
    /// result, and news captions are far shorter than 77 tokens (the parity test checks the
    /// equality against transformers).
    fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let encoded: Vec<_> = texts
            .iter()
            .map(|t| self.clip.tokenizer().tokenize(t))
            .collect();
        let width = encoded.iter().map(|e| e.len).max().unwrap_or(0);
        let rows: Vec<(Vec<u32>, usize)> = encoded
            .into_iter()
            .map(|e| {
                let eos = e.len.saturating_sub(1);
                (e.ids.into_iter().take(width).collect(), eos)
            })
            .collect();
        self.clip.token_embeddings(&rows).map_err(clip_error)
    }

    /// The model.
    pub fn clip(&self) -> &Clip {
        &self.clip
    }

    /// Scores `images`, each with its caption (`None`: no similarity).
    pub fn score(
        &self,
        images: &[DynamicImage],
        captions: &[Option<&str>],
    ) -> Result<Vec<ClipScores>, Error> {
        if images.len() != captions.len() {
            return Err(Error::Config(format!(
                "{} images but {} captions",
                images.len(),
                captions.len()
            )));
        }
        let image_emb = self.clip.image_embeddings(images).map_err(clip_error)?;
        let texts: Vec<&str> = captions.iter().flatten().copied().collect();
        let text_emb = if texts.is_empty() {
            Vec::new()
        } else {
            self.text_embeddings(&texts)?
        };
        if image_emb.len() != images.len() || text_emb.len() != texts.len() {
            return Err(Error::Config(
                "CLIP returned a different number of embeddings than inputs".into(),
            ));
        }
        let mut text_emb = text_emb.iter();
        let mut out = Vec::with_capacity(images.len());
        for (emb, caption) in image_emb.iter().zip(captions) {
            let img = normalized(emb);
            let similarity = match caption {
                Some(_) => text_emb.next().map(|t| dot(&img, &normalized(t)) as f32),
                None => None,
            };
            let iqa = iqa_probability(dot(&img, &self.anchors[0]), dot(&img, &self.anchors[1]));
            out.push(ClipScores {
                similarity,
                iqa: iqa as f32,
            });
        }
        Ok(out)
    }
}

fn clip_error(e: anchor_clip::Error) -> Error {
    Error::Clip(e.to_string())
}

/// The caption `clip_similarity` is computed on, or `None` when it has no text.
pub fn similarity_caption(caption: &str) -> Option<&str> {
    (!caption.trim().is_empty()).then_some(caption)
}

/// A nullable `Float32` column of a batch of `table` (the CLIP columns), or a clear error.
pub fn float32_column<'a>(
    batch: &'a arrow_array::RecordBatch,
    table: &str,
    column: &str,
) -> Result<&'a arrow_array::Float32Array, Error> {
    batch
        .column_by_name(column)
        .and_then(|a| a.as_any().downcast_ref::<arrow_array::Float32Array>())
        .ok_or_else(|| {
            Error::Config(format!(
                "table {table} has no Float32 column {column}; re-run `anchor curate --force`"
            ))
        })
}

/// Value `row` of a nullable `Float32` column.
pub fn opt_f32(array: &arrow_array::Float32Array, row: usize) -> Option<f32> {
    use arrow_array::Array;
    (!array.is_null(row)).then(|| array.value(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqa_is_the_softmax_of_100_cosines() {
        // softmax([100·0.3, 100·0.28])[0] = e^30 / (e^30 + e^28)
        let want = 30f64.exp() / (30f64.exp() + 28f64.exp());
        assert!((iqa_probability(0.3, 0.28) - want).abs() < 1e-12);
        assert!((iqa_probability(0.1, 0.1) - 0.5).abs() < 1e-12);
        // Gaps far beyond f64's exp range stay finite and ordered.
        assert_eq!(iqa_probability(1.0, -1.0), 1.0);
        assert!(iqa_probability(-1.0, 1.0) < 1e-80);
    }

    #[test]
    fn normalized_vectors_have_unit_length_and_zero_stays_zero() {
        let v = normalized(&[3.0, 4.0]);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-12);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn blank_captions_have_no_similarity() {
        assert_eq!(similarity_caption("  \n"), None);
        assert_eq!(similarity_caption("Rain in Paris"), Some("Rain in Paris"));
    }
}
