//! A GGUF file's vocabulary, read from its metadata alone (no side files): byte-level BPE
//! (`tokenizer.ggml.model = "gpt2"`) through candle's `TokenizerFromGguf`, SentencePiece
//! (`"llama"`) through [`crate::spm`], and each token's bytes for constrained decoding.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;

use crate::spm::{Spm, spm_token_bytes};

/// A tokenizer built from GGUF metadata.
pub struct Vocab {
    kind: Kind,
}

enum Kind {
    /// Byte-level BPE.
    Bpe(Box<Tokenizer>),
    /// SentencePiece.
    Spm(Box<Spm>),
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_sentencepiece() {
            "sentencepiece"
        } else {
            "bpe"
        };
        f.debug_struct("Vocab").field("kind", &kind).finish()
    }
}

pub(crate) fn md_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    ct.metadata.get(key)?.to_string().ok().map(String::as_str)
}

impl Vocab {
    /// Reads the vocabulary of a GGUF; the error says what is missing or unsupported.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, String> {
        let model_kind = md_str(ct, "tokenizer.ggml.model").unwrap_or("");
        let kind = match model_kind {
            "gpt2" => {
                let mut t = Tokenizer::from_gguf(ct).map_err(|e| e.to_string())?;
                fix_pre_tokenizer(&mut t, md_str(ct, "tokenizer.ggml.pre").unwrap_or("gpt2"));
                Kind::Bpe(Box::new(t))
            }
            "llama" => Kind::Spm(Box::new(
                Spm::from_gguf(ct).map_err(|e| format!("SentencePiece vocabulary: {e}"))?,
            )),
            _ => {
                return Err(format!(
                    "tokenizer {model_kind:?} is not supported (supported: gpt2 byte-level BPE, \
                     llama SentencePiece)"
                ));
            }
        };
        Ok(Vocab { kind })
    }

    /// True for a SentencePiece vocabulary.
    pub fn is_sentencepiece(&self) -> bool {
        matches!(self.kind, Kind::Spm(_))
    }

    /// Prompt text, special tokens included.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.kind {
            Kind::Bpe(t) => encode_bpe(t, text),
            Kind::Spm(s) => s.encode(text),
        }
    }

    /// Text that continues a sequence (SentencePiece adds no space prefix to it).
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.kind {
            Kind::Bpe(t) => encode_bpe(t, text),
            Kind::Spm(s) => s.encode_continuation(text),
        }
    }

    /// The id of a token spelled exactly `piece` (a special token's text, say).
    pub fn token(&self, piece: &str) -> Option<u32> {
        match &self.kind {
            Kind::Bpe(t) => t.token_to_id(piece),
            Kind::Spm(s) => s.token(piece),
        }
    }
}

fn encode_bpe(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
    tok.encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| e.to_string())
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

/// Each token's bytes, indexed by id; `None` for tokens that never appear inside generated
/// text (control, unknown, user-defined and unused tokens).
pub fn token_bytes(ct: &gguf_file::Content) -> Result<Vec<Option<Vec<u8>>>, String> {
    let spm = md_str(ct, "tokenizer.ggml.model") == Some("llama");
    let tokens = ct
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .ok_or("no tokenizer.ggml.tokens array")?;
    let types = ct
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok());
    let table = anchor_clip_tokenizer::unicode_to_bytes();
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let s = t
            .to_string()
            .map_err(|_| format!("token {i} is not a string"))?;
        // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
        // 6 byte. Only normal tokens (and SentencePiece's byte fallbacks) spell text.
        let ty = types
            .and_then(|ts| ts.get(i))
            .and_then(|v| v.to_i32().or_else(|_| v.to_u32().map(|u| u as i32)).ok())
            .unwrap_or(1);
        out.push(if spm {
            spm_token_bytes(s, ty)
        } else if ty == 1 {
            gpt2_token_bytes(s, &table)
        } else {
            None
        });
    }
    Ok(out)
}

/// Decodes a byte-level BPE token string to its bytes; `None` if a char is not in the table.
pub fn gpt2_token_bytes(
    token: &str,
    table: &std::collections::HashMap<char, u8>,
) -> Option<Vec<u8>> {
    token.chars().map(|c| table.get(&c).copied()).collect()
}
