//! A small GGUF language-model runtime on candle, for running a local instruction model over
//! many short prompts that share a long prefix.
//!
//! - [`GgufModel`]: opens a GGUF file (sha256, architecture check, vocabulary, chat
//!   template, weights).
//! - [`llama`]: the quantized forward pass of the llama, qwen2 and phi3 architectures, with
//!   an in-place KV cache that a shared prefix fills once.
//! - [`vocab`]: the vocabulary from GGUF metadata alone, byte-level BPE or SentencePiece
//!   (a port of llama.cpp's tokenizer), and each token's bytes for constrained decoding.
//! - [`requant`]: low-bit weights requantised to Q8_0 at load, for candle's faster kernels.
//! - `testing` (feature `testing`): tiny random GGUF files of each architecture, and the
//!   llama.cpp side of the parity tests.
//!
//! ```no_run
//! use anchor_llm::{GgufModel, Requant};
//! let model = GgufModel::open("model.gguf".as_ref(), Requant::Q8_0)?;
//! let ids = model.vocab().encode("Hello").map_err(|e| std::io::Error::other(e))?;
//! let mut cache = model.cache(ids.len())?;
//! let logits = model.logits(&mut cache, &ids)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod error;
mod gguf;
pub mod llama;
pub mod requant;
mod spm;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vocab;

pub use error::{Error, Result};
pub use gguf::GgufModel;
pub use llama::{KvCache, Llama};
pub use requant::Requant;
pub use vocab::Vocab;
