//! The `gguf` backend: a local quantized llama-family model (llama, qwen2, phi3; see
//! [`crate::llama`]) run with candle, greedy constrained decoding.
//!
//! - Tokenizer and chat template come from the GGUF metadata (no side files): byte-level
//!   BPE through candle's `TokenizerFromGguf`, SentencePiece (Phi-3) through [`spm`]; ChatML,
//!   Llama 3 and Phi-3 templates.
//! - Low-bit weights are requantised to Q8_0 once at load (see [`crate::weights`]).
//! - The prompt's shared prefix (system + few-shot turns) is run once at load into the
//!   in-place KV cache of [`crate::llama`]; each caption truncates the cache back to the
//!   prefix and writes only its own positions (no per-caption copy, no re-encoding).
//! - Every generated token is picked under [`crate::constrain::Grammar`], so the answer is
//!   always valid JSON whose subjects are spans of the caption, even from random weights.

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;

use crate::backend::{Annotation, Backend, GenStats};
use crate::constrain::{ANSWER_PREFIX, Grammar, TokenBytes, gpt2_token_bytes};
use crate::llama::{KvCache, Llama};
use crate::parse::{ErrorClass, ParseError, parse_answer, render_answer};
use crate::prompt::{ChatFormat, Mode, Prompt};
use crate::subject::weight_for_pluses;
use crate::weights::{Requant, requantise, sha256_file};
use crate::{Error, Result};

mod spm;

/// Options of the `gguf` backend.
#[derive(Debug, Clone)]
pub struct GgufOptions {
    /// Requantisation at load (default Q8_0).
    pub requant: Requant,
    /// The prompt (default few-shot-v1).
    pub prompt: Prompt,
    /// At most this many subjects per caption (default 6).
    pub max_subjects: usize,
    /// Feed grammar-forced bytes in one batched forward pass (default true).
    pub jump_forward: bool,
}

impl Default for GgufOptions {
    fn default() -> Self {
        GgufOptions {
            requant: Requant::Q8_0,
            prompt: Prompt::default_few_shot(),
            max_subjects: 6,
            jump_forward: true,
        }
    }
}

/// What loading did, for logs and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadInfo {
    /// Tensors requantised.
    pub requantised: usize,
    /// Seconds to read (and requantise) the weights.
    pub load_secs: f64,
    /// Shared-prefix tokens.
    pub prefix_tokens: usize,
    /// Seconds to run the shared prefix.
    pub prefix_secs: f64,
}

/// The `gguf` backend.
pub struct GgufBackend {
    path: PathBuf,
    sha256: String,
    prompt: Prompt,
    format: Chat,
    tokenizer: Tok,
    token_bytes: TokenBytes,
    /// The model weights.
    model: Llama,
    /// The KV cache; its first `prefix_len` positions hold the shared prefix.
    cache: KvCache,
    prefix_len: usize,
    max_subjects: usize,
    jump_forward: bool,
    load_info: LoadInfo,
}

impl std::fmt::Debug for GgufBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufBackend")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("prompt", &self.prompt.version)
            .field("format", &self.format)
            .field("load_info", &self.load_info)
            .finish_non_exhaustive()
    }
}

fn md_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    ct.metadata.get(key)?.to_string().ok().map(String::as_str)
}

/// The chat formats the backend renders: [`ChatFormat`]'s, plus Phi-3's (kept here because
/// only this backend needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chat {
    Std(ChatFormat),
    /// `<|system|>\n...<|end|>\n<|user|>\n...<|end|>\n<|assistant|>\n`, after `bos` (the BOS
    /// token's text when the vocabulary adds one, else empty).
    Phi3 {
        bos: String,
    },
}

impl Chat {
    fn detect(template: &str, bos: String) -> Option<Self> {
        if let Some(f) = ChatFormat::detect(template) {
            return Some(Chat::Std(f));
        }
        ["<|user|>", "<|assistant|>", "<|end|>"]
            .iter()
            .all(|m| template.contains(m))
            .then_some(Chat::Phi3 { bos })
    }

    fn prefix(&self, prompt: &Prompt) -> String {
        match self {
            Chat::Std(f) => f.prefix(prompt),
            Chat::Phi3 { bos } => {
                let mut s = format!("{bos}<|system|>\n{}<|end|>\n", prompt.system);
                for ex in &prompt.examples {
                    s.push_str(&format!(
                        "<|user|>\n{}<|end|>\n<|assistant|>\n{}<|end|>\n",
                        prompt.user_message(&ex.caption),
                        ex.answer
                    ));
                }
                s
            }
        }
    }

    fn suffix(&self, prompt: &Prompt, caption: &str) -> String {
        match self {
            Chat::Std(f) => f.suffix(prompt, caption),
            Chat::Phi3 { .. } => format!(
                "<|user|>\n{}<|end|>\n<|assistant|>\n{ANSWER_PREFIX}",
                prompt.user_message(caption)
            ),
        }
    }
}

/// The vocabulary's tokenizer.
enum Tok {
    /// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`).
    Bpe(Box<Tokenizer>),
    /// SentencePiece (`"llama"`).
    Spm(Box<spm::Spm>),
}

impl Tok {
    /// Prompt text, special tokens included.
    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        match self {
            Tok::Bpe(t) => encode(t, text),
            Tok::Spm(s) => s.encode(text),
        }
    }

    /// Answer text that continues a sequence.
    fn encode_continuation(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        match self {
            Tok::Bpe(t) => encode(t, text),
            Tok::Spm(s) => s.encode_continuation(text),
        }
    }
}

/// Fixes candle's pre-tokenizer for pre-types it does not know: its fallback adds a prefix
/// space (GPT-2's `add_prefix_space = true`), which SmolLM2's own tokenizer.json does not;
/// `smollm` also splits digits one by one (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM`).
fn fix_pre_tokenizer(tok: &mut Tokenizer, pre: &str) {
    use tokenizers::pre_tokenizers::PreTokenizerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    if matches!(pre, "qwen2" | "smaug-bpe" | "lfm2" | "llama3") {
        return;
    }
    let byte_level: PreTokenizerWrapper = ByteLevel::new(false, true, true).into();
    let pt: PreTokenizerWrapper = if pre == "smollm" {
        Sequence::new(vec![Digits::new(true).into(), byte_level]).into()
    } else {
        byte_level
    };
    tok.with_pre_tokenizer(Some(pt));
}

/// Each token's bytes (for the grammar), `None` for control/special tokens.
fn token_bytes(ct: &gguf_file::Content, path: &Path, spm: bool) -> Result<TokenBytes> {
    let bad = |detail: String| Error::Gguf {
        path: path.to_path_buf(),
        detail,
    };
    let tokens = ct
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| bad("no tokenizer.ggml.tokens array".into()))?;
    let types = ct
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok());
    let table = anchor_clip_tokenizer::unicode_to_bytes();
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let s = t
            .to_string()
            .map_err(|_| bad(format!("token {i} is not a string")))?;
        // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
        // 6 byte. Only normal tokens (and SentencePiece's byte fallbacks) may appear inside
        // an answer.
        let ty = types
            .and_then(|ts| ts.get(i))
            .and_then(|v| v.to_i32().or_else(|_| v.to_u32().map(|u| u as i32)).ok())
            .unwrap_or(1);
        out.push(if spm {
            spm::spm_token_bytes(s, ty)
        } else if ty == 1 {
            gpt2_token_bytes(s, &table)
        } else {
            None
        });
    }
    Ok(TokenBytes::new(out))
}

impl GgufBackend {
    /// Loads a GGUF model file for CPU inference.
    pub fn load(path: &Path, opts: GgufOptions) -> Result<Self> {
        let device = Device::Cpu;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let gguf_err = |e: candle_core::Error| Error::Gguf {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let t0 = Instant::now();
        let sha256 = sha256_file(path)?;
        let mut file = File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file).map_err(gguf_err)?;

        let arch = md_str(&content, "general.architecture").unwrap_or("");
        if !crate::llama::SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(Error::Gguf {
                path: path.to_path_buf(),
                detail: format!(
                    "architecture {arch:?} is not supported (supported: {})",
                    crate::llama::SUPPORTED_ARCHITECTURES.join(", ")
                ),
            });
        }
        let bad = |detail: String| Error::Gguf {
            path: path.to_path_buf(),
            detail,
        };
        let model_kind = md_str(&content, "tokenizer.ggml.model").unwrap_or("");
        let tokenizer = match model_kind {
            "gpt2" => {
                let mut t = Tokenizer::from_gguf(&content).map_err(gguf_err)?;
                fix_pre_tokenizer(
                    &mut t,
                    md_str(&content, "tokenizer.ggml.pre").unwrap_or("gpt2"),
                );
                Tok::Bpe(Box::new(t))
            }
            "llama" => Tok::Spm(Box::new(
                spm::Spm::from_gguf(&content)
                    .map_err(|e| bad(format!("SentencePiece vocabulary: {e}")))?,
            )),
            _ => {
                return Err(bad(format!(
                    "tokenizer {model_kind:?} is not supported (supported: gpt2 byte-level BPE, \
                     llama SentencePiece)"
                )));
            }
        };
        // llama.cpp's default: SentencePiece vocabularies add BOS, BPE ones do not.
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(model_kind == "llama");
        let bos_text = content
            .metadata
            .get("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.to_u32().ok())
            .zip(
                content
                    .metadata
                    .get("tokenizer.ggml.tokens")
                    .and_then(|v| v.to_vec().ok()),
            )
            .and_then(|(id, toks)| toks.get(id as usize)?.to_string().ok().cloned())
            .filter(|_| add_bos)
            .unwrap_or_default();
        let template = md_str(&content, "tokenizer.chat_template").unwrap_or("");
        let format = Chat::detect(template, bos_text).ok_or_else(|| {
            bad(
                "chat template missing or not recognised (supported: ChatML, Llama 3, Phi-3)"
                    .into(),
            )
        })?;
        let token_bytes = token_bytes(&content, path, model_kind == "llama")?;

        let (model, requantised) = match opts.requant.target() {
            None => (
                Llama::from_gguf(&content, &mut file, &device).map_err(gguf_err)?,
                0,
            ),
            Some(target) => {
                let (ct, bytes, n) = requantise(&content, &mut file, path, target)?;
                let m =
                    Llama::from_gguf(&ct, &mut Cursor::new(bytes), &device).map_err(gguf_err)?;
                (m, n)
            }
        };
        let load_secs = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let prefix = format.prefix(&opts.prompt);
        let ids = tokenizer.encode(&prefix).map_err(|detail| Error::Gguf {
            path: path.to_path_buf(),
            detail: format!("tokenizing the prompt prefix: {detail}"),
        })?;
        let model_err = |source| Error::Model {
            path: path.to_path_buf(),
            source,
        };
        // Room for the prefix plus a typical caption and answer; it grows when needed.
        let mut cache = model.cache(ids.len() + 512).map_err(model_err)?;
        model.forward(&mut cache, &ids).map_err(model_err)?;
        let load_info = LoadInfo {
            requantised,
            load_secs,
            prefix_tokens: ids.len(),
            prefix_secs: t1.elapsed().as_secs_f64(),
        };
        tracing::info!(
            path = %path.display(),
            requantised,
            load_secs,
            prefix_tokens = ids.len(),
            "gguf model loaded"
        );
        Ok(GgufBackend {
            path: path.to_path_buf(),
            sha256,
            prompt: opts.prompt,
            format,
            tokenizer,
            token_bytes,
            model,
            cache,
            prefix_len: ids.len(),
            max_subjects: opts.max_subjects,
            jump_forward: opts.jump_forward,
            load_info,
        })
    }

    /// What loading did.
    pub fn load_info(&self) -> LoadInfo {
        self.load_info
    }

    /// The exact texts the model reads for `caption`: the shared prefix (encoded once) and
    /// the per-caption suffix (for benchmarks that replay them on another engine).
    pub fn prompt_texts(&self, caption: &str) -> (String, String) {
        (
            self.format.prefix(&self.prompt),
            self.format.suffix(&self.prompt, caption),
        )
    }

    /// The model file's sha256.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    fn model_err(&self, source: candle_core::Error) -> Error {
        Error::Model {
            path: self.path.clone(),
            source,
        }
    }

    fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let r = self
            .model
            .forward(&mut self.cache, ids)
            .and_then(|l| l.to_vec1::<f32>());
        r.map_err(|e| self.model_err(e))
    }
}

impl GgufBackend {
    /// The forced continuation and its tokens, when jump-forward is on and the tokenizer
    /// spells the forced bytes exactly with normal tokens (otherwise decode step by step).
    fn jump(
        &self,
        grammar: &Grammar,
        state: &crate::constrain::State,
    ) -> Option<(Vec<u8>, Vec<u32>)> {
        if !self.jump_forward {
            return None;
        }
        let bytes = grammar.forced(state);
        if bytes.is_empty() {
            return None;
        }
        let text = std::str::from_utf8(&bytes).ok()?;
        let ids = self.tokenizer.encode_continuation(text).ok()?;
        let spelled: Vec<u8> = ids
            .iter()
            .flat_map(|&i| self.token_bytes.get(i).iter().copied())
            .collect();
        (spelled == bytes).then_some((bytes, ids))
    }
}

/// `log_softmax(logits)[id]`.
fn log_prob(logits: &[f32], id: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    logits
        .get(id as usize)
        .map_or(f64::NEG_INFINITY, |&l| f64::from(l - max) - sum.ln())
}

impl GgufBackend {
    /// `rank` mode: candidate spans from [`crate::candidates`]; the model scores each as the
    /// answer's first subject (sum of token log-probabilities, closing quote included) and
    /// the best becomes the main subject (two pluses), the others keep at most one.
    fn annotate_ranked(&mut self, caption: &str) -> Result<Annotation> {
        let mut stats = GenStats {
            captions: 1,
            ..GenStats::default()
        };
        let rules = self.prompt.rules;
        let mut subjects = crate::candidates::candidates_with(caption, rules);
        let order = crate::candidates::subject_order(caption, &subjects, rules);
        if subjects.len() > 1 {
            let t0 = Instant::now();
            let mut text = self.format.suffix(&self.prompt, caption);
            // The grammar's forced opening of the first subject.
            text.push_str("{\"text\":\"");
            let ids = match self.tokenizer.encode(&text) {
                Ok(ids) => ids,
                Err(e) => return Ok(failed(String::new(), ErrorClass::Generation, e, stats)),
            };
            let base = self.prefix_len + ids.len();
            if base + 64 >= self.model.max_context() {
                let detail = format!("prompt of {base} tokens exceeds the context");
                return Ok(failed(String::new(), ErrorClass::Generation, detail, stats));
            }
            self.cache.truncate(self.prefix_len);
            let first = self.logits(&ids)?;
            stats.prompt_tokens = ids.len() as u64;
            stats.prompt_secs = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let mut best: Option<(usize, f64)> = None;
            for (i, s) in subjects.iter().enumerate() {
                let quoted = serde_json::Value::String(s.text.clone()).to_string();
                // Without the opening quote: it is part of the shared text above.
                let cont = &quoted[1..];
                let Ok(tokens) = self.tokenizer.encode_continuation(cont) else {
                    continue;
                };
                let Some((&head, rest)) = tokens.split_first() else {
                    continue;
                };
                let mut lp = log_prob(&first, head);
                let mut prev = head;
                for &t in rest {
                    let l = self.logits(&[prev])?;
                    lp += log_prob(&l, t);
                    prev = t;
                }
                stats.forced_tokens += tokens.len() as u64;
                self.cache.truncate(base);
                let pos = order.get(i).copied().unwrap_or(i);
                let lp = lp - self.prompt.position_penalty * pos as f64;
                if best.is_none_or(|(_, b)| lp > b) {
                    best = Some((i, lp));
                }
            }
            stats.gen_secs = t1.elapsed().as_secs_f64();
            if let Some((i, _)) = best {
                subjects[i].weight = weight_for_pluses(2);
            }
        } else if let Some(s) = subjects.first_mut() {
            s.weight = weight_for_pluses(2);
        }
        Ok(Annotation {
            raw: render_answer(&subjects),
            subjects,
            error: None,
            stats,
        })
    }
}

fn encode(tok: &Tokenizer, text: &str) -> std::result::Result<Vec<u32>, String> {
    tok.encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| e.to_string())
}

fn failed(raw: String, class: ErrorClass, detail: String, stats: GenStats) -> Annotation {
    Annotation {
        subjects: Vec::new(),
        raw,
        error: Some(ParseError { class, detail }),
        stats,
    }
}

impl Backend for GgufBackend {
    fn name(&self) -> &'static str {
        "gguf"
    }

    fn model_id(&self) -> String {
        self.sha256.clone()
    }

    fn prompt_version(&self) -> Option<String> {
        Some(self.prompt.version.clone())
    }

    fn annotate(&mut self, caption: &str) -> Result<Annotation> {
        if self.prompt.mode == Mode::Rank {
            return self.annotate_ranked(caption);
        }
        let mut stats = GenStats {
            captions: 1,
            ..GenStats::default()
        };
        let suffix = self.format.suffix(&self.prompt, caption);
        let ids = match self.tokenizer.encode(&suffix) {
            Ok(ids) => ids,
            Err(e) => return Ok(failed(String::new(), ErrorClass::Generation, e, stats)),
        };
        let grammar = Grammar::new(caption, self.max_subjects);
        let mut pos = self.prefix_len;
        let max_context = self.model.max_context();
        if pos + ids.len() >= max_context {
            let detail = format!("prompt of {} tokens exceeds the context", pos + ids.len());
            return Ok(failed(String::new(), ErrorClass::Generation, detail, stats));
        }
        self.cache.truncate(self.prefix_len);
        let t0 = Instant::now();
        let mut logits = self.logits(&ids)?;
        pos += ids.len();
        stats.prompt_tokens = ids.len() as u64;
        stats.prompt_secs = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut state = grammar.start();
        let mut out = ANSWER_PREFIX.as_bytes().to_vec();
        let budget = grammar.max_answer_bytes().min(max_context - pos);
        for _ in 0..budget {
            let tp = Instant::now();
            let picked = self.token_bytes.pick(&grammar, &state, &logits);
            stats.pick_secs += tp.elapsed().as_secs_f64();
            let Some(id) = picked else {
                let raw = String::from_utf8_lossy(&out).into_owned();
                let detail = "no vocabulary token continues the answer".to_string();
                return Ok(failed(raw, ErrorClass::Generation, detail, stats));
            };
            // `pick` only returns accepted tokens, so this always advances.
            let Some(next) = grammar.advance(&state, self.token_bytes.get(id)) else {
                break;
            };
            state = next;
            out.extend_from_slice(self.token_bytes.get(id));
            stats.gen_tokens += 1;
            if state.is_done() {
                break;
            }
            let mut feed = vec![id];
            if let Some((bytes, ids)) = self.jump(&grammar, &state) {
                state = grammar.advance(&state, &bytes).unwrap_or(state);
                out.extend_from_slice(&bytes);
                stats.forced_tokens += ids.len() as u64;
                feed.extend(ids);
                if state.is_done() {
                    break;
                }
            }
            if pos + feed.len() >= max_context {
                break;
            }
            logits = self.logits(&feed)?;
            pos += feed.len();
        }
        stats.gen_secs = t1.elapsed().as_secs_f64();
        let raw = String::from_utf8_lossy(&out).into_owned();
        if !state.is_done() {
            let detail = "context or token budget exhausted before the answer ended".to_string();
            return Ok(failed(raw, ErrorClass::Generation, detail, stats));
        }
        Ok(match parse_answer(caption, &raw) {
            Ok(subjects) => Annotation {
                subjects,
                raw,
                error: None,
                stats,
            },
            Err(e) => Annotation {
                subjects: Vec::new(),
                raw,
                error: Some(e),
                stats,
            },
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Tensor;
    use candle_core::quantized::{GgmlDType, QTensor};
    use gguf_file::Value;

    /// Deterministic pseudo-random floats (candle's CPU `randn` is not seedable).
    fn lcg(n: usize, seed: &mut u64, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5) * 2.0 * scale
            })
            .collect()
    }

    /// Writes a tiny random llama GGUF with a byte-level BPE vocabulary (256 byte tokens,
    /// ChatML specials and a few merges) and a ChatML template.
    pub(crate) fn write_tiny_gguf(path: &Path, seed: u64) {
        write_tiny_gguf_arch(path, seed, "llama");
    }

    /// [`write_tiny_gguf`] for architecture `arch`: `qwen2` adds q/k/v biases and a context
    /// length, as candle's `quantized_qwen2` requires; `phi3` is laid out as llama.cpp writes
    /// Phi-3-mini (fused `attn_qkv`, gate|up `ffn_up`, an `output` matrix, a sliding window,
    /// a SentencePiece vocabulary and the Phi-3 chat template).
    pub(crate) fn write_tiny_gguf_arch(path: &Path, seed: u64, arch: &str) {
        write_tiny_gguf_with(path, seed, arch, &[], &[]);
    }

    /// [`write_tiny_gguf_arch`] with extra metadata and F32 vectors (RoPE factors); an extra
    /// key replaces a default one of the same name.
    pub(crate) fn write_tiny_gguf_with(
        path: &Path,
        seed: u64,
        arch: &str,
        extra_md: &[(String, Value)],
        extra_tensors: &[(&str, Vec<f32>)],
    ) {
        let (hidden, ff, heads, kv_heads, layers) = (64usize, 128usize, 2u32, 1u32, 2u32);
        let head_dim = hidden / heads as usize;
        let phi3 = arch == "phi3";
        let s = |x: &str| Value::String(x.to_string());
        let mut md: Vec<(String, Value)> = if phi3 {
            spm_vocab_metadata()
        } else {
            bpe_vocab_metadata()
        };
        md.push(("general.architecture".into(), s(arch)));
        let keyed = |k: &str| format!("{arch}.{k}");
        md.extend([
            (keyed("attention.head_count"), Value::U32(heads)),
            (keyed("attention.head_count_kv"), Value::U32(kv_heads)),
            (keyed("block_count"), Value::U32(layers)),
            (keyed("embedding_length"), Value::U32(hidden as u32)),
            (keyed("feed_forward_length"), Value::U32(ff as u32)),
            (keyed("rope.dimension_count"), Value::U32(head_dim as u32)),
            (keyed("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
            (keyed("rope.freq_base"), Value::F32(10000.0)),
            (keyed("context_length"), Value::U32(4096)),
        ]);
        if phi3 {
            md.push((keyed("attention.sliding_window"), Value::U32(2047)));
        }
        for (k, v) in extra_md {
            md.retain(|(mk, _)| mk != k);
            md.push((k.clone(), v.clone()));
        }
        let vocab = md
            .iter()
            .find(|(k, _)| k == "tokenizer.ggml.tokens")
            .and_then(|(_, v)| v.to_vec().ok())
            .map_or(0, Vec::len);
        let mut seed = seed;
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        let mut add =
            |name: String, dims: &[usize], dtype: GgmlDType, scale: f32, seed: &mut u64| {
                let n: usize = dims.iter().product();
                let data = if scale == 0.0 {
                    vec![1.0f32; n]
                } else {
                    lcg(n, seed, scale)
                };
                let t = Tensor::from_vec(data, dims, &Device::Cpu).unwrap();
                tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
            };
        use GgmlDType::{F32, Q4_1};
        add(
            "token_embd.weight".into(),
            &[vocab, hidden],
            F32,
            1.0,
            &mut seed,
        );
        add("output_norm.weight".into(), &[hidden], F32, 0.0, &mut seed);
        if phi3 {
            add(
                "output.weight".into(),
                &[vocab, hidden],
                Q4_1,
                0.2,
                &mut seed,
            );
        }
        let kv = kv_heads as usize * head_dim;
        for l in 0..layers {
            let p = format!("blk.{l}");
            add(
                format!("{p}.attn_norm.weight"),
                &[hidden],
                F32,
                0.0,
                &mut seed,
            );
            add(
                format!("{p}.ffn_norm.weight"),
                &[hidden],
                F32,
                0.0,
                &mut seed,
            );
            if phi3 {
                let qkv = [hidden + 2 * kv, hidden];
                add(format!("{p}.attn_qkv.weight"), &qkv, Q4_1, 0.2, &mut seed);
                add(
                    format!("{p}.ffn_up.weight"),
                    &[2 * ff, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
            } else {
                add(
                    format!("{p}.attn_q.weight"),
                    &[hidden, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
                add(
                    format!("{p}.attn_k.weight"),
                    &[kv, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
                add(
                    format!("{p}.attn_v.weight"),
                    &[kv, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
                add(
                    format!("{p}.ffn_gate.weight"),
                    &[ff, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
                add(
                    format!("{p}.ffn_up.weight"),
                    &[ff, hidden],
                    Q4_1,
                    0.2,
                    &mut seed,
                );
            }
            if arch == "qwen2" {
                for (name, rows) in [("attn_q", hidden), ("attn_k", kv), ("attn_v", kv)] {
                    add(format!("{p}.{name}.bias"), &[rows], F32, 0.5, &mut seed);
                }
            }
            add(
                format!("{p}.attn_output.weight"),
                &[hidden, hidden],
                Q4_1,
                0.2,
                &mut seed,
            );
            add(
                format!("{p}.ffn_down.weight"),
                &[hidden, ff],
                Q4_1,
                0.2,
                &mut seed,
            );
        }
        for (name, v) in extra_tensors {
            let t = Tensor::new(v.as_slice(), &Device::Cpu).unwrap();
            tensors.push((name.to_string(), QTensor::quantize(&t, F32).unwrap()));
        }
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut f = File::create(path).unwrap();
        gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    }

    /// A byte-level BPE vocabulary (256 byte tokens, ChatML specials and a few merges) with a
    /// ChatML template.
    fn bpe_vocab_metadata() -> Vec<(String, Value)> {
        let table = anchor_clip_tokenizer::unicode_to_bytes();
        let mut byte_to_char = vec![' '; 256];
        for (c, b) in &table {
            byte_to_char[*b as usize] = *c;
        }
        let mut tokens: Vec<String> = vec![
            "<|endoftext|>".into(),
            "<|im_start|>".into(),
            "<|im_end|>".into(),
        ];
        let mut types: Vec<Value> = vec![Value::I32(3); 3];
        for c in &byte_to_char {
            tokens.push(c.to_string());
            types.push(Value::I32(1));
        }
        let merges = [
            ("Ġ", "t"),
            ("Ġt", "h"),
            ("Ġth", "e"),
            ("{", "\""),
            ("\"", ":"),
            ("e", "r"),
        ];
        for (a, b) in merges {
            tokens.push(format!("{a}{b}"));
            types.push(Value::I32(1));
        }
        let s = |x: &str| Value::String(x.to_string());
        vec![
            ("tokenizer.ggml.model".into(), s("gpt2")),
            ("tokenizer.ggml.pre".into(), s("smollm")),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.iter().map(|t| s(t)).collect()),
            ),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(merges.iter().map(|(a, b)| s(&format!("{a} {b}"))).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
            (
                "tokenizer.chat_template".into(),
                s(
                    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
                ),
            ),
        ]
    }

    /// Phi-3's chat template as its GGUFs carry it.
    pub(crate) const PHI3_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}";

    /// A SentencePiece vocabulary laid out like Phi-3's (`<unk>`, `<s>`, `</s>`, 256 byte
    /// tokens, `▁`-spelled pieces with merge scores, then the chat specials), with the Phi-3
    /// chat template.
    pub(crate) fn spm_vocab_metadata() -> Vec<(String, Value)> {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types: Vec<Value> = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        let mut scores: Vec<Value> = vec![Value::F32(0.0); 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(Value::I32(6));
            scores.push(Value::F32(0.0));
        }
        // Single characters first, then every prefix of some frequent words as merges: a
        // longer piece scores lower, like SentencePiece's rank order.
        let mut pieces: Vec<String> = vec!["▁".into()];
        pieces.extend((b'!'..=b'~').map(|b| (b as char).to_string()));
        let words = [
            "▁the",
            "▁in",
            "▁a",
            "▁of",
            "▁and",
            "er",
            "on",
            "{\"",
            "\":",
            "\",\"",
            "▁text",
            "▁subjects",
            "▁kind",
            "▁weight",
            "▁person",
            "▁place",
            "▁Caption:",
            "▁news",
            "▁caption",
            "▁photo",
            "▁subject",
            "ing",
            "▁name",
            "▁JSON",
            "▁object",
            "▁event",
            "▁organisation",
            "▁other",
            "▁You",
            "▁read",
            "▁For",
            "▁each",
            "▁with",
        ];
        for w in words {
            let chars: Vec<char> = w.chars().collect();
            for n in 2..=chars.len() {
                let p: String = chars[..n].iter().collect();
                if !pieces.contains(&p) {
                    pieces.push(p);
                }
            }
        }
        for (i, p) in pieces.iter().enumerate() {
            tokens.push(p.clone());
            types.push(Value::I32(1));
            scores.push(Value::F32(-(i as f32)));
        }
        for special in [
            "<|endoftext|>",
            "<|assistant|>",
            "<|system|>",
            "<|end|>",
            "<|user|>",
        ] {
            tokens.push(special.into());
            types.push(Value::I32(3));
            scores.push(Value::F32(0.0));
        }
        let eos = tokens
            .iter()
            .position(|t| t == "<|endoftext|>")
            .unwrap_or(2) as u32;
        let s = |x: &str| Value::String(x.to_string());
        vec![
            ("general.name".into(), s("Phi3 tiny")),
            ("tokenizer.ggml.model".into(), s("llama")),
            ("tokenizer.ggml.pre".into(), s("default")),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.iter().map(|t| s(t)).collect()),
            ),
            ("tokenizer.ggml.scores".into(), Value::Array(scores)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)),
            ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
            ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(true)),
            ("tokenizer.chat_template".into(), s(PHI3_TEMPLATE)),
        ]
    }

    const CAPTIONS: &[&str] = &[
        "Pope Francis greets \"pilgrims\" in St Peter's Square on Sunday.",
        "Firefighters battle a wildfire near Athens, Greece.",
        "A fisherman repairs his nets at dawn.",
        "Fans of Atlético Madrid cheer in Zürich.",
    ];

    #[test]
    fn random_tiny_model_always_yields_valid_subjects() {
        let dir = tempfile::tempdir().unwrap();
        for (seed, requant, jump_forward) in [
            (1u64, Requant::Q8_0, true),
            (2, Requant::Keep, false),
            (3, Requant::Q8_0, false),
            (4, Requant::Keep, true),
        ] {
            let path = dir.path().join(format!("tiny-{seed}.gguf"));
            write_tiny_gguf(&path, seed);
            let opts = GgufOptions {
                requant,
                jump_forward,
                ..GgufOptions::default()
            };
            let mut b = GgufBackend::load(&path, opts).unwrap();
            let info = b.load_info();
            assert_eq!(
                info.requantised,
                if requant == Requant::Q8_0 { 14 } else { 0 }
            );
            assert!(info.prefix_tokens > 100, "{info:?}");
            assert_eq!(b.sha256(), sha256_file(&path).unwrap());
            for c in CAPTIONS {
                let a = b.annotate(c).unwrap();
                assert!(a.error.is_none(), "{c}: {:?} raw {}", a.error, a.raw);
                assert!(
                    a.raw.starts_with(ANSWER_PREFIX) && a.raw.ends_with("]}"),
                    "{}",
                    a.raw
                );
                for s in &a.subjects {
                    s.validate(c).unwrap();
                }
                assert!(a.subjects.len() <= 6);
                // Each token adds at least one byte to the answer.
                assert!(a.stats.gen_tokens >= 1);
                let answer_tokens = (a.stats.gen_tokens + a.stats.forced_tokens) as usize;
                assert!(answer_tokens <= a.raw.len() - ANSWER_PREFIX.len());
                // The tiny vocabulary has no multi-byte literal tokens, so jump-forward always
                // has something to force (at least the `}` after `]`).
                assert_eq!(a.stats.forced_tokens > 0, jump_forward);
                // Greedy decoding from the same prefix state is deterministic.
                assert_eq!(b.annotate(c).unwrap().raw, a.raw);
            }
        }
    }

    #[test]
    fn a_qwen2_file_annotates_through_the_whole_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-qwen2.gguf");
        write_tiny_gguf_arch(&path, 5, "qwen2");
        let mut b = GgufBackend::load(&path, GgufOptions::default()).unwrap();
        for c in CAPTIONS {
            let a = b.annotate(c).unwrap();
            assert!(a.error.is_none(), "{c}: {:?} raw {}", a.error, a.raw);
            for s in &a.subjects {
                s.validate(c).unwrap();
            }
        }
        let gemma = dir.path().join("tiny-gemma.gguf");
        write_tiny_gguf_arch(&gemma, 5, "gemma");
        let e = GgufBackend::load(&gemma, GgufOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("supported: llama, qwen2, phi3"),
            "{e}"
        );
    }

    #[test]
    fn a_phi3_file_annotates_through_the_whole_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-phi3.gguf");
        write_tiny_gguf_arch(&path, 6, "phi3");
        for jump_forward in [true, false] {
            let opts = GgufOptions {
                jump_forward,
                ..GgufOptions::default()
            };
            let mut b = GgufBackend::load(&path, opts).unwrap();
            // The Phi-3 template, after BOS, with the chat specials as single tokens.
            let (prefix, suffix) = b.prompt_texts("Rain in Spain");
            assert!(
                prefix.starts_with("<s><|system|>\nYou read news"),
                "{prefix}"
            );
            assert_eq!(prefix.matches("<|assistant|>\n").count(), 3);
            assert_eq!(
                suffix,
                "<|user|>\nCaption: Rain in Spain<|end|>\n<|assistant|>\n{\"subjects\":["
            );
            let Tok::Spm(spm) = &b.tokenizer else {
                panic!("phi3's vocabulary is SentencePiece");
            };
            let ids = b.tokenizer.encode(&suffix).unwrap();
            assert_eq!(ids[0], spm.token("<|user|>").unwrap());
            assert!(ids.contains(&spm.token("<|assistant|>").unwrap()));
            assert_eq!(
                b.model.max_context(),
                2047,
                "the sliding window caps the context"
            );
            // 3 fused attn_qkv + ffn_up, attn_output, ffn_down per block, plus output.
            assert_eq!(b.load_info().requantised, 9);
            for c in CAPTIONS {
                let a = b.annotate(c).unwrap();
                assert!(a.error.is_none(), "{c}: {:?} raw {}", a.error, a.raw);
                assert!(a.raw.ends_with("]}"), "{}", a.raw);
                for s in &a.subjects {
                    s.validate(c).unwrap();
                }
                assert_eq!(a.stats.forced_tokens > 0, jump_forward);
                assert_eq!(b.annotate(c).unwrap().raw, a.raw);
            }
        }
    }

    #[test]
    fn corrupt_or_unsupported_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        std::fs::write(&path, b"GGUF\x03\x00\x00\x00garbage").unwrap();
        let e = GgufBackend::load(&path, GgufOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Gguf { .. }), "{e}");
        let e = GgufBackend::load(&dir.path().join("missing.gguf"), GgufOptions::default())
            .unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // Truncated real image: header parses, tensor data does not.
        let good = dir.path().join("good.gguf");
        write_tiny_gguf(&good, 9);
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(GgufBackend::load(&path, GgufOptions::default()).is_err());
    }
}
