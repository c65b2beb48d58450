//! LLM subject extraction for anchor (SAFE in the ANCHOR paper, arXiv 2404.10141).
//!
//! For each news caption a backend names the key visual subjects, each an **exact span** of
//! the caption with a kind and a compel-style weight (`1.1^k` for `k` pluses, see
//! [`subject`]). The [`step`] module is the `annotate` step: it reads `pairs_curated` (kept
//! rows) and `splits` and writes `subjects`, with a durable [`cache`] keyed by caption hash,
//! backend, model sha256 and prompt version. This crate imports no other step crate.
//!
//! - [`subject`]: the [`Subject`] model, span validation, weights.
//! - [`parse`]: model answers to subjects, with stable [`ErrorClass`]es.
//! - [`prompt`]: versioned prompts from `data/annotate/prompts/`, chat-template rendering.
//! - [`backend`]: the [`Backend`] trait; implementations [`heuristic`] (no model) and
//!   [`gguf`] (a local quantized llama run by [`anchor_llm`], constrained greedy decoding
//!   in [`constrain`]) and [`openai`]
//!   (OpenAI-compatible HTTP servers: concurrency, retries, timeouts).
//! - [`candidates`]: rule-based candidate spans; with a `rank` prompt (`rank-v19` to
//!   `rank-v1`) the gguf backend scores them and the best becomes the main subject instead of writing
//!   spans.
//! - [`eval`]: span precision/recall/F1 and main-subject recall against the labelled set,
//!   by subset (written, real-tune, real-heldout), Markdown report.
//!
//! Invariants: every subject a backend returns validates against its caption; the `gguf`
//! backend is deterministic (greedy) and always yields a valid answer; a bad answer is
//! recorded with an error class, never dropped or turned into a panic.
//!
//! ```no_run
//! use anchor_annotate::{Backend, GgufBackend, GgufOptions};
//! let mut b = GgufBackend::load(
//!     "data/models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(),
//!     GgufOptions::default(),
//! )?;
//! let a = b.annotate("Chancellor Angela Merkel arrives for talks in Brussels.")?;
//! for s in &a.subjects {
//!     println!("{} {:?} {}", s.text, s.kind, s.weight);
//! }
//! # Ok::<(), anchor_annotate::Error>(())
//! ```
#![warn(missing_docs)]

pub mod backend;
pub mod cache;
pub mod candidates;
pub mod constrain;
mod error;
pub mod eval;
pub mod gguf;
pub mod heuristic;
pub mod openai;
pub mod parse;
pub mod prompt;
pub mod step;
pub mod subject;

pub use anchor_llm::Requant;
pub use backend::{Annotation, Backend, GenStats};
pub use error::{Error, Result};
pub use gguf::{GgufBackend, GgufOptions};
pub use heuristic::HeuristicBackend;
pub use openai::{OpenAiBackend, OpenAiOptions};
pub use parse::{ErrorClass, ParseError, parse_answer};
pub use prompt::Prompt;
pub use subject::{Kind, Subject};
