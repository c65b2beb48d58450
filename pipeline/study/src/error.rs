//! Errors of the study crate.

use std::path::PathBuf;

/// Errors from anchor-study.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] anchor_core::Error),
    /// A setting is invalid.
    #[error("invalid study setting: {0}")]
    Config(String),
    /// The inputs cannot make the study asked for, or contradict each other.
    #[error("{0}")]
    Input(String),
    /// A file or socket could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or address.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
