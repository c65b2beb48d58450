//! The CLIP BPE tokenizer, as open_clip's `SimpleTokenizer` (and OpenAI CLIP's) does it,
//! with the input span of every token so callers can map a subject phrase to its tokens.
//!
//! Pipeline: clean (ftfy-style fixes, `html.unescape`, whitespace collapse, lowercase),
//! split with CLIP's pre-tokenizer regex, map each piece's UTF-8 bytes to GPT-2's
//! printable byte chars, merge by the ranks of `bpe_simple_vocab_16e6.txt.gz` with
//! `</w>` closing each word, then add start (49406) and end (49407), truncate and pad
//! to 77.
//!
//! ```no_run
//! use anchor_clip_tokenizer::ClipTokenizer;
//! let tok = ClipTokenizer::from_file("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")?;
//! let text = "Angela Merkel arrives in Brussels";
//! let enc = tok.tokenize(text);
//! for (id, span) in enc.ids.iter().zip(&enc.spans) {
//!     if let Some(s) = span { println!("{id} {}", &text[s.clone()]); }
//! }
//! # Ok::<(), anchor_clip_tokenizer::Error>(())
//! ```

#![warn(missing_docs)]

mod bpe;
mod clean;
mod width_table;

pub use bpe::{byte_chars_in_vocab_order, bytes_to_unicode, unicode_to_bytes};

use regex::Regex;
use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Id of `<start_of_text>`.
pub const START_ID: u32 = 49406;
/// Id of `<end_of_text>`.
pub const END_ID: u32 = 49407;
/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;
/// Number of merges CLIP uses from the vocabulary file (`49152 - 256 - 2`).
const NUM_MERGES: usize = 48_894;

/// Errors of the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The vocabulary file could not be read or decompressed.
    #[error("reading CLIP vocabulary {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The vocabulary has a malformed merge line or too few merges.
    #[error("CLIP vocabulary {path}: {reason}")]
    Vocab {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One BPE token of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Vocabulary id.
    pub id: u32,
    /// Byte range of the input text this token comes from (whole chars; several
    /// tokens share a span when a char is split across byte-level tokens).
    pub span: Range<usize>,
}

/// A fixed-length encoding, ready for the text encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// `context_length` ids: start, tokens, end, then padding.
    pub ids: Vec<u32>,
    /// Input byte span of each id; `None` for start, end and padding.
    pub spans: Vec<Option<Range<usize>>>,
    /// Number of ids before the padding (start and end included).
    pub len: usize,
    /// Whether tokens were dropped to fit the context.
    pub truncated: bool,
}

impl Encoding {
    /// Positions of the tokens whose span overlaps the input byte range `range`
    /// (a subject phrase found in the caption, say).
    pub fn positions_overlapping(&self, range: Range<usize>) -> Vec<usize> {
        self.spans
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| s.start < range.end && range.start < s.end)
                    .map(|_| i)
            })
            .collect()
    }
}

/// The CLIP tokenizer.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    encoder: HashMap<String, u32>,
    decoder: Vec<String>,
    ranks: HashMap<(String, String), u32>,
    byte_chars: [char; 256],
    pattern: Regex,
    context_length: usize,
    pad_id: u32,
}

impl ClipTokenizer {
    /// Loads `bpe_simple_vocab_16e6.txt.gz` (gzip) or its decompressed text.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let raw = std::fs::read(path).map_err(io)?;
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut s)
                .map_err(io)?;
            s
        } else {
            String::from_utf8(raw)
                .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?
        };
        Self::from_merges(&text).map_err(|reason| Error::Vocab {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Builds the tokenizer from the vocabulary text (a header line, then merges).
    pub fn from_merges(text: &str) -> std::result::Result<Self, String> {
        let lines: Vec<&str> = text.split('\n').skip(1).take(NUM_MERGES).collect();
        if lines.len() < NUM_MERGES {
            return Err(format!("{} merges, CLIP needs {NUM_MERGES}", lines.len()));
        }
        let byte_chars = bpe::bytes_to_unicode();
        let mut decoder: Vec<String> = bpe::byte_vocab_order()
            .iter()
            .map(|&b| byte_chars[b as usize].to_string())
            .collect();
        let with_end: Vec<String> = decoder.iter().map(|s| format!("{s}</w>")).collect();
        decoder.extend(with_end);
        let mut ranks = HashMap::with_capacity(NUM_MERGES);
        for (rank, line) in lines.iter().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!(
                    "merge line {} is not two symbols: {line:?}",
                    rank + 2
                ));
            };
            ranks.insert((a.to_string(), b.to_string()), rank as u32);
            decoder.push(format!("{a}{b}"));
        }
        decoder.push("<start_of_text>".into());
        decoder.push("<end_of_text>".into());
        let encoder = decoder
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let pattern = Regex::new(r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+")
            .map_err(|e| e.to_string())?;
        Ok(Self {
            encoder,
            decoder,
            ranks,
            byte_chars,
            pattern,
            context_length: CONTEXT_LENGTH,
            pad_id: 0,
        })
    }

    /// Sets the padding id: 0 as open_clip pads (the default), or [`END_ID`] as the
    /// Stable Diffusion 1.x tokenizer config does.
    pub fn with_pad_id(mut self, pad_id: u32) -> Self {
        self.pad_id = pad_id;
        self
    }

    /// Sets the context length (77 by default).
    pub fn with_context_length(mut self, context_length: usize) -> Self {
        self.context_length = context_length.max(2);
        self
    }

    /// Vocabulary size (49408).
    pub fn vocab_size(&self) -> usize {
        self.decoder.len()
    }

    /// Tokens of `text`, without start/end, with their input byte spans.
    pub fn encode(&self, text: &str) -> Vec<Token> {
        let cleaned = clean::clean(text);
        let s: String = cleaned.iter().map(|m| m.c).collect();
        // Byte offset in `s` → index in `cleaned`.
        let mut char_at = Vec::with_capacity(s.len() + 1);
        for (i, m) in cleaned.iter().enumerate() {
            char_at.extend(std::iter::repeat_n(i, m.c.len_utf8()));
        }
        let mut out = Vec::new();
        for mat in self.pattern.find_iter(&s) {
            let piece = mat.as_str();
            if let Some(&id) = (piece == "<start_of_text>" || piece == "<end_of_text>")
                .then(|| self.encoder.get(piece))
                .flatten()
            {
                let span = cleaned[char_at[mat.start()]].span.start
                    ..cleaned[char_at[mat.end() - 1]].span.end;
                out.push(Token { id, span });
                continue;
            }
            let bytes = piece.as_bytes();
            let mut symbols: Vec<String> = bytes
                .iter()
                .map(|&b| self.byte_chars[b as usize].to_string())
                .collect();
            if let Some(last) = symbols.last_mut() {
                last.push_str("</w>");
            }
            let mut offset = mat.start();
            for p in bpe::merge(symbols, &self.ranks) {
                let n = p.trim_end_matches("</w>").chars().count();
                let (first, last) = (char_at[offset], char_at[offset + n - 1]);
                let span = cleaned[first].span.start..cleaned[last].span.end;
                // Every piece is a merge result or a single byte char, so it is in the vocabulary.
                if let Some(&id) = self.encoder.get(&p) {
                    out.push(Token { id, span });
                }
                offset += n;
            }
        }
        out
    }

    /// Start, tokens, end, truncated (end kept last) and padded to the context length.
    pub fn tokenize(&self, text: &str) -> Encoding {
        let tokens = self.encode(text);
        let max_tokens = self.context_length - 2;
        let truncated = tokens.len() > max_tokens;
        let mut ids = vec![START_ID];
        let mut spans = vec![None];
        for t in tokens.into_iter().take(max_tokens) {
            ids.push(t.id);
            spans.push(Some(t.span));
        }
        ids.push(END_ID);
        spans.push(None);
        let len = ids.len();
        ids.resize(self.context_length, self.pad_id);
        spans.resize(self.context_length, None);
        Encoding {
            ids,
            spans,
            len,
            truncated,
        }
    }

    /// Text of `ids` (`</w>` becomes a space), as open_clip's `decode`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let joined: String = ids
            .iter()
            .filter_map(|&i| self.decoder.get(i as usize))
            .map(String::as_str)
            .collect();
        let mut byte_of = HashMap::new();
        for (b, &c) in self.byte_chars.iter().enumerate() {
            byte_of.insert(c, b as u8);
        }
        let bytes: Vec<u8> = joined
            .chars()
            .filter_map(|c| byte_of.get(&c).copied())
            .collect();
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: header, the merges for "ab</w>", then filler merges.
    fn toy() -> ClipTokenizer {
        let mut text = String::from("#version: 0.2\na b</w>\nc d\n");
        for i in 0..NUM_MERGES - 2 {
            text.push_str(&format!("x{i} y\n"));
        }
        ClipTokenizer::from_merges(&text).unwrap()
    }

    #[test]
    fn ids_spans_and_padding() {
        let tok = toy();
        assert_eq!(tok.vocab_size(), 49408);
        let text = "AB cd";
        let toks = tok.encode(text);
        // "ab" → one merged token "ab</w>" = 512; "cd" → "cd" (513) is not final, so
        // "c" "d</w>" merge only into "cd" when "d" carries no </w>: stays "c", "d</w>".
        assert_eq!(toks[0].id, 512);
        assert_eq!(&text[toks[0].span.clone()], "AB");
        assert_eq!(toks.len(), 3);
        assert_eq!(&text[toks[2].span.clone()], "d");
        let enc = tok.tokenize(text);
        assert_eq!(enc.ids.len(), CONTEXT_LENGTH);
        assert_eq!(
            &enc.ids[..5],
            &[START_ID, 512, toks[1].id, toks[2].id, END_ID]
        );
        assert_eq!(enc.ids[5], 0);
        assert_eq!(enc.positions_overlapping(3..5), vec![2, 3]);
        assert_eq!(tok.decode(&enc.ids[1..4]), "ab cd ");
    }

    #[test]
    fn truncation_keeps_the_end_token() {
        let tok = toy().with_pad_id(END_ID);
        let text = "a ".repeat(100);
        let enc = tok.tokenize(&text);
        assert!(enc.truncated);
        assert_eq!(enc.len, CONTEXT_LENGTH);
        assert_eq!(enc.ids[CONTEXT_LENGTH - 1], END_ID);
        let short = tok.tokenize("a");
        assert_eq!(short.ids[3], END_ID, "padding with the end id");
    }

    #[test]
    fn a_short_vocabulary_is_an_error() {
        assert!(
            ClipTokenizer::from_merges("#v\na b\n")
                .unwrap_err()
                .contains("merges")
        );
    }
}
