//! Subject-weighted text conditioning, the "S" of SAFE.
//!
//! Each token's embedding is moved away from the empty prompt's by its weight:
//! `weighted = empty + (full - empty) * w`, which is compel's rule for weights >= 1
//! (`EmbeddingsProvider.build_weighted_embedding_tensor`). The research code up-weighted
//! every subject with `++`, i.e. `w = 1.1^2 = 1.21` ([`FIXED_SUBJECT_WEIGHT`]).
//!
//! The API takes token ids and per-token character offsets, so any CLIP BPE tokenizer can
//! feed it: [`token_weights`] maps subject character spans to the tokens they overlap,
//! [`fit_to_context`] truncates and pads to 77 positions the way SD's pipelines do, and
//! [`weighted_embeddings`] applies the rule to encoder outputs.

use std::ops::Range;

use candle_core::Tensor;

use crate::clip::ClipTextModel;
use crate::error::{Error, Result};

/// compel's `++`: the weight the SAFE research code gave every subject.
pub const FIXED_SUBJECT_WEIGHT: f32 = 1.21;

/// How subject weights are chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// Every subject gets the same weight (default [`FIXED_SUBJECT_WEIGHT`]).
    Fixed(f32),
    /// The weights the LLM annotator gave each subject (`subjects` table).
    Llm,
}

impl Default for Weighting {
    fn default() -> Self {
        Self::Fixed(FIXED_SUBJECT_WEIGHT)
    }
}

/// A subject mention in a caption: character range (in the same unit as the tokenizer's
/// offsets) and the annotator's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectSpan {
    /// Characters of the caption the subject covers.
    pub chars: Range<usize>,
    /// The weight the annotator gave (used under [`Weighting::Llm`]).
    pub weight: f32,
}

/// Per-token weights: a token overlapping a subject span gets that subject's weight (the
/// largest if several overlap); other tokens and special tokens (`None` offsets) get 1.
pub fn token_weights(
    offsets: &[Option<Range<usize>>],
    subjects: &[SubjectSpan],
    weighting: Weighting,
) -> Vec<f32> {
    offsets
        .iter()
        .map(|off| {
            let Some(tok) = off else { return 1.0 };
            subjects
                .iter()
                .filter(|s| s.chars.start < tok.end && tok.start < s.chars.end)
                .map(|s| match weighting {
                    Weighting::Fixed(w) => w,
                    Weighting::Llm => s.weight,
                })
                .fold(None, |acc: Option<f32>, w| {
                    Some(acc.map_or(w, |a| a.max(w)))
                })
                .unwrap_or(1.0)
        })
        .collect()
}

/// The special tokens of a CLIP tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|startoftext|>`.
    pub bos: u32,
    /// `<|endoftext|>`.
    pub eos: u32,
    /// Padding (`<|endoftext|>` for SD 1.x, `!` = 0 for SD 2.x).
    pub pad: u32,
}

impl SpecialTokens {
    /// OpenAI CLIP's vocabulary as SD 1.x's tokenizer uses it.
    pub fn sd15() -> Self {
        Self {
            bos: 49406,
            eos: 49407,
            pad: 49407,
        }
    }

    /// SD 2.x's tokenizer pads with `!`.
    pub fn sd21() -> Self {
        Self {
            pad: 0,
            ..Self::sd15()
        }
    }
}

/// A prompt ready for the text encoder: exactly `len` ids and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPrompt {
    /// `bos, content..., eos, pad...`.
    pub ids: Vec<u32>,
    /// One weight per id (1 on special tokens).
    pub weights: Vec<f32>,
    /// Whether content tokens were cut to fit (SD truncates silently; we count it).
    pub truncated: bool,
}

impl FittedPrompt {
    /// From a tokenizer's fixed-length encoding: `ids` already wrapped and padded, `spans` the
    /// input range of each id (`None` on special tokens), as `anchor-clip-tokenizer`'s
    /// `Encoding { ids, spans, truncated, .. }` provides them.
    pub fn from_encoding(
        ids: Vec<u32>,
        spans: &[Option<Range<usize>>],
        truncated: bool,
        subjects: &[SubjectSpan],
        weighting: Weighting,
    ) -> Result<Self> {
        if ids.len() != spans.len() {
            return Err(Error::Input {
                what: "encoding",
                reason: format!("{} ids but {} spans", ids.len(), spans.len()),
            });
        }
        Ok(Self {
            weights: token_weights(spans, subjects, weighting),
            ids,
            truncated,
        })
    }
}

/// Wraps content tokens (no special tokens) in bos/eos and pads to `len` (77 for SD), cutting
/// the content to `len - 2` tokens as `CLIPTokenizer(truncation=True, max_length=77)` does.
pub fn fit_to_context(
    content_ids: &[u32],
    content_weights: &[f32],
    special: SpecialTokens,
    len: usize,
) -> Result<FittedPrompt> {
    if content_ids.len() != content_weights.len() {
        return Err(Error::Input {
            what: "token weights",
            reason: format!(
                "{} ids but {} weights",
                content_ids.len(),
                content_weights.len()
            ),
        });
    }
    if len < 2 {
        return Err(Error::Input {
            what: "context length",
            reason: format!("{len} leaves no room for bos and eos"),
        });
    }
    let keep = content_ids.len().min(len - 2);
    let mut ids = Vec::with_capacity(len);
    let mut weights = Vec::with_capacity(len);
    ids.push(special.bos);
    weights.push(1.0);
    ids.extend_from_slice(&content_ids[..keep]);
    weights.extend_from_slice(&content_weights[..keep]);
    ids.push(special.eos);
    weights.push(1.0);
    ids.resize(len, special.pad);
    weights.resize(len, 1.0);
    Ok(FittedPrompt {
        ids,
        weights,
        truncated: content_ids.len() > keep,
    })
}

/// The empty prompt's ids: `bos, eos, pad...` (what compel encodes as its baseline).
pub fn empty_prompt_ids(special: SpecialTokens, len: usize) -> Vec<u32> {
    let mut ids = vec![special.bos, special.eos];
    ids.resize(len.max(2), special.pad);
    ids
}

/// compel's weighting rule: `empty + (full - empty) * w` per token.
///
/// `full`: `[B, L, D]` encoder outputs of the prompts; `empty`: `[1, L, D]` or `[B, L, D]`
/// of the empty prompt; `weights`: `[B, L]`.
pub fn weighted_embeddings(full: &Tensor, empty: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (b, l, _d) = full.dims3()?;
    if weights.dims() != [b, l] {
        return Err(Error::Input {
            what: "token weights",
            reason: format!("expected [{b}, {l}], got {:?}", weights.dims()),
        });
    }
    let w = weights.to_dtype(full.dtype())?.unsqueeze(2)?;
    let delta = full.broadcast_sub(empty)?;
    Ok(delta.broadcast_mul(&w)?.broadcast_add(empty)?)
}

/// A frozen text encoder plus its cached empty-prompt encoding.
#[derive(Debug, Clone)]
pub struct TextConditioner {
    encoder: ClipTextModel,
    special: SpecialTokens,
    empty: Tensor,
}

impl TextConditioner {
    /// Encodes the empty prompt once.
    pub fn new(encoder: ClipTextModel, special: SpecialTokens) -> Result<Self> {
        let len = encoder.config().max_position_embeddings;
        let dev = encoder.device().clone();
        let ids = Tensor::new(empty_prompt_ids(special, len), &dev)?.unsqueeze(0)?;
        let empty = encoder.forward(&ids)?;
        Ok(Self {
            encoder,
            special,
            empty,
        })
    }

    /// The special tokens this conditioner pads with.
    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// The empty prompt's encoding `[1, L, D]` (also the unconditional input of CFG).
    pub fn empty(&self) -> &Tensor {
        &self.empty
    }

    /// Weighted embeddings `[B, L, D]` of fitted prompts. Prompts whose weights are all 1
    /// come out exactly as the plain encoding.
    pub fn encode(&self, prompts: &[FittedPrompt]) -> Result<Tensor> {
        let l = self.encoder.config().max_position_embeddings;
        let dev = self.empty.device();
        let mut ids = Vec::with_capacity(prompts.len() * l);
        let mut ws = Vec::with_capacity(prompts.len() * l);
        for p in prompts {
            if p.ids.len() != l || p.weights.len() != l {
                return Err(Error::Input {
                    what: "prompt",
                    reason: format!(
                        "{} ids / {} weights, expected {l}",
                        p.ids.len(),
                        p.weights.len()
                    ),
                });
            }
            ids.extend_from_slice(&p.ids);
            ws.extend_from_slice(&p.weights);
        }
        let b = prompts.len();
        let ids = Tensor::from_vec(ids, (b, l), dev)?;
        let weights = Tensor::from_vec(ws, (b, l), dev)?;
        let full = self.encoder.forward(&ids)?;
        weighted_embeddings(&full, &self.empty, &weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn subject_spans_weight_the_tokens_they_overlap() {
        // "Angela Merkel arrives": tokens angela(0..6) merkel(7..13) arrives(14..21).
        let offsets = vec![None, Some(0..6), Some(7..13), Some(14..21), None];
        let subjects = vec![SubjectSpan {
            chars: 0..13,
            weight: 1.5,
        }];
        let fixed = token_weights(&offsets, &subjects, Weighting::default());
        assert_eq!(fixed, vec![1.0, 1.21, 1.21, 1.0, 1.0]);
        let llm = token_weights(&offsets, &subjects, Weighting::Llm);
        assert_eq!(llm, vec![1.0, 1.5, 1.5, 1.0, 1.0]);
        let p = FittedPrompt::from_encoding(
            vec![49406, 1, 2, 3, 49407],
            &offsets,
            false,
            &subjects,
            Weighting::Fixed(1.5),
        )
        .map_err(|e| e.to_string());
        assert_eq!(p.map(|p| p.weights), Ok(vec![1.0, 1.5, 1.5, 1.0, 1.0]));
    }

    #[test]
    fn long_prompts_are_truncated_and_counted() -> Result<()> {
        let ids: Vec<u32> = (1..=100).collect();
        let w = vec![1.0; 100];
        let p = fit_to_context(&ids, &w, SpecialTokens::sd15(), 77)?;
        assert_eq!(p.ids.len(), 77);
        assert_eq!(p.ids[0], 49406);
        assert_eq!(p.ids[1], 1);
        assert_eq!(p.ids[75], 75);
        assert_eq!(p.ids[76], 49407);
        assert!(p.truncated);
        let short = fit_to_context(&[5, 6], &[1.21, 1.0], SpecialTokens::sd21(), 77)?;
        assert_eq!(&short.ids[..5], &[49406, 5, 6, 49407, 0]);
        assert_eq!(&short.weights[..4], &[1.0, 1.21, 1.0, 1.0]);
        assert!(!short.truncated);
        Ok(())
    }

    #[test]
    fn weighting_scales_the_difference_from_the_empty_prompt() -> Result<()> {
        let dev = Device::Cpu;
        let full = Tensor::new(&[[[1f32, 2.], [3., 4.]]], &dev)?;
        let empty = Tensor::new(&[[[0f32, 1.], [1., 1.]]], &dev)?;
        let w = Tensor::new(&[[1f32, 2.]], &dev)?;
        let out = weighted_embeddings(&full, &empty, &w)?.to_vec3::<f32>()?;
        assert_eq!(out, vec![vec![vec![1.0, 2.0], vec![5.0, 7.0]]]);
        Ok(())
    }
}
