//! One GGUF model file, opened: its weights as a [`Llama`], its [`Vocab`], each token's
//! bytes, the chat template and BOS text from its metadata, and its sha256 for provenance.

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::gguf_file;

use crate::llama::{KvCache, Llama, SUPPORTED_ARCHITECTURES};
use crate::requant::{Requant, requantise};
use crate::vocab::{Vocab, md_str, token_bytes};
use crate::{Error, Result};

/// An opened GGUF model, ready to run on the CPU.
pub struct GgufModel {
    path: PathBuf,
    sha256: String,
    vocab: Vocab,
    token_bytes: Vec<Option<Vec<u8>>>,
    chat_template: String,
    bos_text: String,
    model: Llama,
    requantised: usize,
    load_secs: f64,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("vocab", &self.vocab)
            .field("requantised", &self.requantised)
            .finish_non_exhaustive()
    }
}

impl GgufModel {
    /// Reads a GGUF file: checks the architecture ([`SUPPORTED_ARCHITECTURES`]) and the
    /// vocabulary, then loads the weights, requantised as `requant` asks.
    pub fn open(path: &Path, requant: Requant) -> Result<Self> {
        let device = Device::Cpu;
        let bad = |detail: String| Error::Gguf {
            path: path.to_path_buf(),
            detail,
        };
        let gguf_err = |e: candle_core::Error| bad(e.to_string());
        let t0 = Instant::now();
        let sha256 = anchor_digest::sha256_file(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content = gguf_file::Content::read(&mut file).map_err(gguf_err)?;

        let arch = md_str(&content, "general.architecture").unwrap_or("");
        if !SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(bad(format!(
                "architecture {arch:?} is not supported (supported: {})",
                SUPPORTED_ARCHITECTURES.join(", ")
            )));
        }
        let vocab = Vocab::from_gguf(&content).map_err(bad)?;
        // llama.cpp's default: SentencePiece vocabularies add BOS, BPE ones do not.
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(vocab.is_sentencepiece());
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
        let chat_template = md_str(&content, "tokenizer.chat_template")
            .unwrap_or("")
            .to_string();
        let token_bytes = token_bytes(&content).map_err(bad)?;

        let (model, requantised) = match requant.target() {
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
        Ok(GgufModel {
            path: path.to_path_buf(),
            sha256,
            vocab,
            token_bytes,
            chat_template,
            bos_text,
            model,
            requantised,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model file's sha256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Each token's bytes (see [`crate::vocab::token_bytes`]).
    pub fn token_bytes(&self) -> &[Option<Vec<u8>>] {
        &self.token_bytes
    }

    /// `tokenizer.chat_template`, empty when the file has none.
    pub fn chat_template(&self) -> &str {
        &self.chat_template
    }

    /// The BOS token's text when the vocabulary adds one before a prompt, else empty.
    pub fn bos_text(&self) -> &str {
        &self.bos_text
    }

    /// Tensors requantised at load.
    pub fn requantised(&self) -> usize {
        self.requantised
    }

    /// Seconds to hash, read and requantise the file.
    pub fn load_secs(&self) -> f64 {
        self.load_secs
    }

    /// The longest sequence the model attends over.
    pub fn max_context(&self) -> usize {
        self.model.max_context()
    }

    /// A KV cache with room for `capacity` positions (it grows when needed).
    pub fn cache(&self, capacity: usize) -> Result<KvCache> {
        self.model.cache(capacity).map_err(|e| self.model_error(e))
    }

    /// Runs `ids` after the cache's positions and returns the last position's logits.
    pub fn logits(&self, cache: &mut KvCache, ids: &[u32]) -> Result<Vec<f32>> {
        self.model
            .forward(cache, ids)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(|e| self.model_error(e))
    }

    fn model_error(&self, source: candle_core::Error) -> Error {
        Error::Model {
            path: self.path.clone(),
            source,
        }
    }
}
