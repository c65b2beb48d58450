//! The crate's error type. Per-caption problems (a bad model answer) are not errors: they
//! are recorded on the [`crate::Annotation`] with an [`crate::ErrorClass`]. These variants
//! are for things that stop a backend from working at all, and each names its locator.

use std::path::PathBuf;

/// Errors of `anchor-annotate`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model file did not load, failed while running, or cannot be prompted (no chat
    /// template this crate renders, or a prompt its vocabulary does not tokenize).
    #[error(transparent)]
    Llm(#[from] anchor_llm::Error),
    /// A prompt file is invalid.
    #[error("prompt {origin}: {detail}")]
    Prompt {
        /// File path or built-in name.
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// A labelled-set line is invalid.
    #[error("{}:{line}: {detail}", path.display())]
    Labelled {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
