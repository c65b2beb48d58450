//! Errors of the split, export and card steps.

use std::path::PathBuf;

/// Errors from anchor-split.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] anchor_core::Error),
    /// Building a record batch failed (a schema bug, not bad input).
    #[error("building a record batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The inputs contradict each other (a pair kept in `pairs_curated` has no bytes, say).
    #[error("inconsistent inputs: {0}")]
    Inconsistent(String),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Re-encoding a kept image failed.
    #[error("image {id}: {source}")]
    Image {
        /// The pair id.
        id: String,
        /// The cause.
        source: anchor_filters::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
