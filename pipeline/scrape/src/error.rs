//! The crate's error type. Per-URL problems are not errors (they end as a
//! row's status and error class); these are the failures that stop a run.

use std::path::PathBuf;

/// Errors of `anchor-scrape`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// I/O on a local file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A URL list could not be read.
    #[error("{path}, row {row}: {detail}")]
    UrlList {
        /// The list.
        path: PathBuf,
        /// 1-based data row (0: the file as a whole).
        row: usize,
        /// What is wrong.
        detail: String,
    },
    /// A WARC file is malformed.
    #[error("{path}, record {record}: {detail}")]
    Warc {
        /// The WARC file.
        path: PathBuf,
        /// 0-based record index.
        record: usize,
        /// What is wrong.
        detail: String,
    },
    /// The outlets file (`--outlets`) is unreadable or invalid.
    #[error("outlets file {path}: {detail}")]
    Outlets {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Live discovery could not be planned or its list not persisted.
    #[error("live discovery: {0}")]
    Discovery(String),
    /// A VisualNews or NYTimes800k collection file is malformed.
    #[error("{path}, record {record}: {detail}")]
    Collection {
        /// The collection file.
        path: PathBuf,
        /// 1-based record (0: the file as a whole).
        record: usize,
        /// What is wrong.
        detail: String,
    },
    /// The demo server could not start.
    #[error("demo server: {0}")]
    Demo(String),
    /// A demo photo file is missing or unreadable.
    #[error("demo photo {path}: {detail}")]
    Photo {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Building or writing a table failed.
    #[error("table {table}: {detail}")]
    Table {
        /// The table.
        table: String,
        /// What is wrong.
        detail: String,
    },
    /// An error from anchor-core.
    #[error(transparent)]
    Core(#[from] anchor_core::Error),
    /// `--retry-failed` found no committed output of a part to retry.
    #[error(
        "--retry-failed: part {part} has no committed output of this source and settings \
         ({detail}); run `anchor scrape` without --retry-failed first"
    )]
    NothingToRetry {
        /// Part index.
        part: usize,
        /// Why the previous output is unusable.
        detail: String,
    },
    /// The async runtime could not start.
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
