//! The `gguf` backend: a local quantized llama-family model (llama, qwen2, phi3) run by
//! [`anchor_llm`], greedy constrained decoding.
//!
//! - Tokenizer and chat template come from the GGUF metadata (no side files); ChatML,
//!   Llama 3 and Phi-3 templates.
//! - Low-bit weights are requantised to Q8_0 once at load ([`anchor_llm::requant`]).
//! - The prompt's shared prefix (system + few-shot turns) is run once at load into the
//!   in-place KV cache of [`anchor_llm::llama`]; each caption truncates the cache back to the
//!   prefix and writes only its own positions (no per-caption copy, no re-encoding).
//! - Every generated token is picked under [`crate::constrain::Grammar`], so the answer is
//!   always valid JSON whose subjects are spans of the caption, even from random weights.

use std::path::Path;
use std::time::Instant;

use anchor_llm::{GgufModel, KvCache, Requant};

use crate::backend::{Annotation, Backend, GenStats};
use crate::constrain::{ANSWER_PREFIX, Grammar, TokenBytes};
use crate::parse::{ErrorClass, ParseError, parse_answer, render_answer};
use crate::prompt::{ChatFormat, Mode, Prompt};
use crate::subject::weight_for_pluses;
use crate::{Error, Result};

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
    prompt: Prompt,
    format: Chat,
    token_bytes: TokenBytes,
    /// The model: weights, vocabulary, provenance.
    model: GgufModel,
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
            .field("path", &self.model.path())
            .field("sha256", &self.model.sha256())
            .field("prompt", &self.prompt.version)
            .field("format", &self.format)
            .field("load_info", &self.load_info)
            .finish_non_exhaustive()
    }
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

impl GgufBackend {
    /// Loads a GGUF model file for CPU inference.
    pub fn load(path: &Path, opts: GgufOptions) -> Result<Self> {
        let bad = |detail: String| {
            Error::Llm(anchor_llm::Error::Gguf {
                path: path.to_path_buf(),
                detail,
            })
        };
        let model = GgufModel::open(path, opts.requant)?;
        let format =
            Chat::detect(model.chat_template(), model.bos_text().to_string()).ok_or_else(|| {
                bad(
                    "chat template missing or not recognised (supported: ChatML, Llama 3, Phi-3)"
                        .into(),
                )
            })?;
        let token_bytes = TokenBytes::new(model.token_bytes().to_vec());

        let t1 = Instant::now();
        let prefix = format.prefix(&opts.prompt);
        let ids = model
            .vocab()
            .encode(&prefix)
            .map_err(|detail| bad(format!("tokenizing the prompt prefix: {detail}")))?;
        // Room for the prefix plus a typical caption and answer; it grows when needed.
        let mut cache = model.cache(ids.len() + 512)?;
        model.logits(&mut cache, &ids)?;
        let load_info = LoadInfo {
            requantised: model.requantised(),
            load_secs: model.load_secs(),
            prefix_tokens: ids.len(),
            prefix_secs: t1.elapsed().as_secs_f64(),
        };
        tracing::info!(
            path = %path.display(),
            requantised = load_info.requantised,
            load_secs = load_info.load_secs,
            prefix_tokens = ids.len(),
            "gguf model loaded"
        );
        Ok(GgufBackend {
            prompt: opts.prompt,
            format,
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
        self.model.sha256()
    }

    fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        Ok(self.model.logits(&mut self.cache, ids)?)
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
        let ids = self.model.vocab().encode_continuation(text).ok()?;
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
        let subject = crate::candidates::grammatical_subject(caption, &subjects, rules);
        if let Some(s) = subject.and_then(|i| subjects.get_mut(i)) {
            // An article-led caption names what the photo shows first; no model call.
            s.weight = weight_for_pluses(2);
        } else if subjects.len() > 1 {
            let t0 = Instant::now();
            let mut text = self.format.suffix(&self.prompt, caption);
            // The grammar's forced opening of the first subject.
            text.push_str("{\"text\":\"");
            let ids = match self.model.vocab().encode(&text) {
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
                let Ok(tokens) = self.model.vocab().encode_continuation(cont) else {
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
        self.model.sha256().to_string()
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
        let ids = match self.model.vocab().encode(&suffix) {
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
mod tests {
    use super::*;
    use anchor_llm::testing::{write_tiny_gguf, write_tiny_gguf_arch};

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
            write_tiny_gguf(&path, seed).unwrap();
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
            assert_eq!(b.sha256(), anchor_digest::sha256_file(&path).unwrap());
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
        write_tiny_gguf_arch(&path, 5, "qwen2").unwrap();
        let mut b = GgufBackend::load(&path, GgufOptions::default()).unwrap();
        for c in CAPTIONS {
            let a = b.annotate(c).unwrap();
            assert!(a.error.is_none(), "{c}: {:?} raw {}", a.error, a.raw);
            for s in &a.subjects {
                s.validate(c).unwrap();
            }
        }
        let gemma = dir.path().join("tiny-gemma.gguf");
        write_tiny_gguf_arch(&gemma, 5, "gemma").unwrap();
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
        write_tiny_gguf_arch(&path, 6, "phi3").unwrap();
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
            let vocab = b.model.vocab();
            assert!(
                vocab.is_sentencepiece(),
                "phi3's vocabulary is SentencePiece"
            );
            let ids = vocab.encode(&suffix).unwrap();
            assert_eq!(ids[0], vocab.token("<|user|>").unwrap());
            assert!(ids.contains(&vocab.token("<|assistant|>").unwrap()));
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
        assert!(
            matches!(e, Error::Llm(anchor_llm::Error::Gguf { .. })),
            "{e}"
        );
        let e = GgufBackend::load(&dir.path().join("missing.gguf"), GgufOptions::default())
            .unwrap_err();
        assert!(matches!(e, Error::Llm(anchor_llm::Error::Io { .. })), "{e}");
        // Truncated real image: header parses, tensor data does not.
        let good = dir.path().join("good.gguf");
        write_tiny_gguf(&good, 9).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(GgufBackend::load(&path, GgufOptions::default()).is_err());
    }

    /// Token ids from llama.cpp (llama-cpp-python) for the same file and texts; `None` when
    /// `ANCHOR_PYTHON` is unset or has no `llama_cpp` (requirements/annotate.txt).
    fn llama_cpp_tokens(gguf: &std::path::Path, texts: &[String]) -> Option<Vec<Vec<u32>>> {
        let script = "import json, sys, llama_cpp\n\
            m = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)\n\
            texts = json.load(sys.stdin)\n\
            print(json.dumps([m.tokenize(t.encode(), add_bos=False, special=True) for t in texts]))\n";
        let texts = serde_json::to_vec(texts).unwrap();
        let out = anchor_llm::testing::llama_cpp_output(script, &[gguf.as_os_str()], &texts);
        Some(serde_json::from_slice(&out.unwrap()?).unwrap())
    }

    // Needs llama-cpp-python, which compiles llama.cpp on install: `make bench`
    // (scripts/bench-annotate.sh) installs it and runs this test with `--ignored`.
    #[test]
    #[ignore = "needs llama-cpp-python; scripts/bench-annotate.sh runs it"]
    fn prompts_tokenize_as_llama_cpp_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-phi3.gguf");
        write_tiny_gguf_arch(&path, 1, "phi3").unwrap();
        let b = GgufBackend::load(&path, GgufOptions::default()).unwrap();
        assert_eq!(b.name(), "gguf");
        let mut texts = vec![b.prompt_texts("").0];
        for c in [
            "Fans of Atlético Madrid cheer in Zürich.",
            "Pope Francis greets \"pilgrims\" in St Peter's Square   on Sunday.",
            "The  caption of the news\tphoto, 2024 — «quoted»",
        ] {
            texts.push(b.prompt_texts(c).1);
            texts.push(c.to_string());
        }
        let ours: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| b.model.vocab().encode(t).unwrap())
            .collect();
        let theirs = llama_cpp_tokens(&path, &texts)
            .expect("ANCHOR_PYTHON must name a Python with llama_cpp (llama-cpp-python)");
        for ((t, o), w) in texts.iter().zip(&ours).zip(&theirs) {
            assert_eq!(o, w, "{t:?}");
        }
    }
}
