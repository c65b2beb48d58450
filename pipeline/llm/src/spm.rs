//! SentencePiece tokenization from GGUF metadata (`tokenizer.ggml.model = "llama"`: Phi-3,
//! Llama 2, Mistral v0.1), ported from llama.cpp's `llm_tokenizer_spm` so that a prompt
//! becomes the same token ids llama.cpp feeds the model.
//!
//! - Special tokens (control, user-defined, unknown) are matched in the raw text first,
//!   longest first; the text between them is tokenized piece by piece.
//! - A fragment that starts the text or follows a special token gets a leading space
//!   (`tokenizer.ggml.add_space_prefix`, on by default), and spaces are spelled `▁`.
//! - Within a fragment, adjacent symbols are merged greedily by the merged piece's score
//!   (ties: leftmost first); a symbol that is no piece falls back to `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use candle_core::quantized::gguf_file;

/// llama.cpp token types.
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

#[derive(Debug)]
struct Special {
    id: u32,
    text: String,
    /// Whitespace after the token is dropped (llama.cpp's `RSTRIP` attribute).
    rstrip: bool,
}

/// A SentencePiece (SPM) vocabulary.
#[derive(Debug)]
pub(crate) struct Spm {
    lookup: HashMap<String, u32>,
    scores: Vec<f32>,
    bytes: [Option<u32>; 256],
    /// Longest text first.
    specials: Vec<Special>,
    add_space_prefix: bool,
}

/// A candidate merge of two adjacent symbols.
#[derive(Debug, PartialEq)]
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    /// The heap's top is the highest score, then the leftmost pair (llama.cpp's order).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl Spm {
    /// Reads the vocabulary, scores and token types of a GGUF.
    pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Self, String> {
        let md = |k: &str| ct.metadata.get(k);
        let tokens = md("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .ok_or("no tokenizer.ggml.tokens array")?;
        let scores = md("tokenizer.ggml.scores")
            .and_then(|v| v.to_vec().ok())
            .ok_or("no tokenizer.ggml.scores array (needed by a SentencePiece vocabulary)")?;
        if scores.len() != tokens.len() {
            return Err(format!(
                "{} scores for {} tokens",
                scores.len(),
                tokens.len()
            ));
        }
        let types = md("tokenizer.ggml.token_type").and_then(|v| v.to_vec().ok());
        let flag = |k: &str, default: bool| md(k).and_then(|v| v.to_bool().ok()).unwrap_or(default);
        let add_space_prefix = flag("tokenizer.ggml.add_space_prefix", true);
        // llama.cpp gives Phi-3's chat specials `rstrip` by model name (the GGUF has no
        // per-token attributes), so `<|user|>\n` tokenizes as `<|user|>` alone.
        let name = md("general.name")
            .and_then(|v| v.to_string().ok())
            .map(|s| s.to_lowercase())
            .unwrap_or_default();
        let phi3 = name.contains("phi-3") || name.contains("phi3");

        let mut lookup = HashMap::with_capacity(tokens.len());
        let mut score_vec = Vec::with_capacity(tokens.len());
        let mut specials = Vec::new();
        for (i, (t, sc)) in tokens.iter().zip(scores).enumerate() {
            let text = t
                .to_string()
                .map_err(|_| format!("token {i} is not a string"))?
                .clone();
            let score = sc
                .to_f32()
                .map_err(|_| format!("score of token {i} is not an f32"))?;
            let ty = types
                .and_then(|ts| ts.get(i))
                .and_then(|v| v.to_i32().or_else(|_| v.to_u32().map(|u| u as i32)).ok())
                .unwrap_or(1);
            let id = u32::try_from(i).map_err(|_| "vocabulary too large".to_string())?;
            if matches!(ty, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED) && !text.is_empty() {
                let rstrip = phi3 && !matches!(text.as_str(), "<unk>" | "<s>" | "<|endoftext|>");
                specials.push(Special {
                    id,
                    text: text.clone(),
                    rstrip,
                });
            }
            lookup.insert(text, id);
            score_vec.push(score);
        }
        specials.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let mut bytes = [None; 256];
        for (b, slot) in bytes.iter_mut().enumerate() {
            *slot = lookup.get(&format!("<0x{b:02X}>")).copied().or_else(|| {
                // llama.cpp's fallback: the byte itself as a one-char piece.
                char::from_u32(b as u32)
                    .filter(|_| b < 0x80)
                    .and_then(|c| lookup.get(&c.to_string()).copied())
            });
        }
        Ok(Spm {
            lookup,
            scores: score_vec,
            bytes,
            specials,
            add_space_prefix,
        })
    }

    /// The token whose text is exactly `text`.
    pub(crate) fn token(&self, text: &str) -> Option<u32> {
        self.lookup.get(text).copied()
    }

    /// Tokenizes prompt text as llama.cpp's `llama_tokenize(text, add_special = false,
    /// parse_special = true)`.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        enum Frag<'a> {
            Text(&'a str),
            Token(u32),
        }
        let mut frags = vec![Frag::Text(text)];
        for sp in &self.specials {
            if !text.contains(sp.text.as_str()) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                let Frag::Text(mut raw) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = raw.find(sp.text.as_str()) {
                    let left = &raw[..at];
                    if !left.is_empty() {
                        next.push(Frag::Text(left));
                    }
                    next.push(Frag::Token(sp.id));
                    raw = &raw[at + sp.text.len()..];
                    if sp.rstrip {
                        raw = raw.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
                    }
                }
                if !raw.is_empty() {
                    next.push(Frag::Text(raw));
                }
            }
            frags = next;
        }
        let mut out = Vec::new();
        let mut prev_special = true;
        for f in frags {
            match f {
                Frag::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Frag::Text(t) => {
                    let prefix = if self.add_space_prefix && prev_special {
                        " "
                    } else {
                        ""
                    };
                    self.fragment(&format!("{prefix}{t}"), &mut out)?;
                    prev_special = false;
                }
            }
        }
        Ok(out)
    }

    /// Tokenizes text that continues a sequence: no special tokens, no space prefix.
    pub(crate) fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        self.fragment(text, &mut out)?;
        Ok(out)
    }

    /// One fragment of plain text (llama.cpp's `llm_tokenizer_spm_session::tokenize`).
    fn fragment(&self, text: &str, out: &mut Vec<u32>) -> Result<(), String> {
        let text = text.replace(' ', "\u{2581}");
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        let n_chars = text.chars().count();
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: i.checked_sub(1),
                next: (i + 1 < n_chars).then_some(i + 1),
            });
        }
        let mut queue = BinaryHeap::new();
        let try_add = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], l, r| {
            let (Some(l), Some(r)) = (l, r) else { return };
            let (a, b): (Symbol, Symbol) = (symbols[l], symbols[r]);
            let piece = &text[a.start..a.start + a.len + b.len];
            if let Some(&id) = self.lookup.get(piece) {
                queue.push(Bigram {
                    left: l,
                    right: r,
                    score: self.scores[id as usize],
                    size: piece.len(),
                });
            }
        };
        for i in 1..symbols.len() {
            try_add(&mut queue, &symbols, Some(i - 1), Some(i));
        }
        while let Some(bg) = queue.pop() {
            let (l, r) = (symbols[bg.left], symbols[bg.right]);
            // A stale pair: one side was merged away since it was queued.
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
                continue;
            }
            symbols[bg.left].len += r.len;
            symbols[bg.right].len = 0;
            symbols[bg.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(bg.left);
            }
            let prev = symbols[bg.left].prev;
            try_add(&mut queue, &symbols, prev, Some(bg.left));
            let next = symbols[bg.left].next;
            try_add(&mut queue, &symbols, Some(bg.left), next);
        }
        let mut at = (!symbols.is_empty()).then_some(0);
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            // Merged symbols are always pieces; only an unknown single char falls back.
            match self.lookup.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        let id = self.bytes[b as usize].ok_or_else(|| {
                            format!("no byte token <0x{b:02X}> for {piece:?} in the vocabulary")
                        })?;
                        out.push(id);
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }
}

/// The bytes a SentencePiece token stands for in an answer: a normal piece with `▁` read as
/// a space, or a `<0xXX>` byte token; `None` for every other kind.
pub(crate) fn spm_token_bytes(text: &str, ty: i32) -> Option<Vec<u8>> {
    match ty {
        1 => Some(text.replace('\u{2581}', " ").into_bytes()),
        6 => {
            let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
            u8::from_str_radix(hex, 16).ok().map(|b| vec![b])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::spm_vocab_metadata;

    fn vocab() -> (Spm, Vec<String>) {
        let md = spm_vocab_metadata();
        let mut ct = gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata: HashMap::new(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        };
        for (k, v) in md {
            ct.metadata.insert(k, v);
        }
        let tokens = ct.metadata["tokenizer.ggml.tokens"]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_string().unwrap().clone())
            .collect();
        (Spm::from_gguf(&ct).unwrap(), tokens)
    }

    fn pieces(spm: &Spm, tokens: &[String], text: &str) -> Vec<String> {
        spm.encode(text)
            .unwrap()
            .iter()
            .map(|&i| tokens[i as usize].clone())
            .collect()
    }

    #[test]
    fn merges_by_score_with_a_space_prefix_and_byte_fallback() {
        let (spm, tokens) = vocab();
        assert_eq!(
            pieces(&spm, &tokens, "the text"),
            ["▁the", "▁text"],
            "a leading space is added and spaces become ▁"
        );
        // `é` is no piece: its two UTF-8 bytes fall back to byte tokens.
        assert_eq!(
            pieces(&spm, &tokens, "Zoé"),
            ["▁", "Z", "o", "<0xC3>", "<0xA9>"]
        );
        // The highest-scoring merge wins: `▁Ca` (a prefix of `▁Caption:`), not `▁C` + `af`.
        assert_eq!(pieces(&spm, &tokens, "Caf"), ["▁Ca", "f"]);
        assert_eq!(
            pieces(&spm, &tokens, "{\"subjects\":["),
            [
                "▁", "{\"", "s", "u", "b", "j", "e", "c", "t", "s", "\":", "["
            ]
        );
        // Continuations get no leading space.
        let ids = spm.encode_continuation("\",\"kind").unwrap();
        let got: Vec<&str> = ids.iter().map(|&i| tokens[i as usize].as_str()).collect();
        assert_eq!(got, ["\",\"", "k", "in", "d"]);
    }

    #[test]
    fn phi3_specials_split_the_text_and_strip_the_following_whitespace() {
        let (spm, tokens) = vocab();
        assert_eq!(
            pieces(
                &spm,
                &tokens,
                "<s><|user|>\nthe news<|end|>\n<|assistant|>\n{\""
            ),
            [
                "<s>",
                "<|user|>",
                "▁the",
                "▁news",
                "<|end|>",
                "<|assistant|>",
                "▁",
                "{\""
            ]
        );
        // `<s>` keeps what follows (llama.cpp clears its rstrip).
        assert_eq!(pieces(&spm, &tokens, "<s> the"), ["<s>", "▁", "▁the"]);
        assert_eq!(spm.token("<|end|>"), Some(tokens.len() as u32 - 2));
    }

    #[test]
    fn token_bytes_read_pieces_and_byte_tokens() {
        assert_eq!(spm_token_bytes("▁the", 1).unwrap(), b" the");
        assert_eq!(spm_token_bytes("<0x0A>", 6).unwrap(), b"\n");
        assert_eq!(spm_token_bytes("<|end|>", 3), None);
        assert_eq!(spm_token_bytes("<0xZZ>", 6), None);
    }
}
