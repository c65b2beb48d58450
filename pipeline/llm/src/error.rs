//! The crate's error type; each variant names the model file it concerns.

use std::path::PathBuf;

/// Errors of `anchor-llm`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a model file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A GGUF file is unreadable, corrupt, or of an unsupported architecture or vocabulary.
    #[error("GGUF {}: {detail}", path.display())]
    Gguf {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The model failed while running (shape error, out of memory, ...).
    #[error("model {}: {source}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// The candle error.
        source: candle_core::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
