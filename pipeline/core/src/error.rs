//! The error type of `anchor-core`.

use std::path::PathBuf;

/// Result alias for `anchor-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store, the ledger, the config or the
/// step runner. Each variant names the file, table or key it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read (truncated, foreign, ...).
    #[error("table {table}: {path}: {source}")]
    Parquet {
        /// Table name.
        table: String,
        /// The part file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow operation failed while building or reading a batch.
    #[error("table {table}: {source}")]
    Arrow {
        /// Table name.
        table: String,
        /// The underlying error.
        source: arrow_schema::ArrowError,
    },
    /// A part file is damaged: its size or content hash differs from what the
    /// ledger recorded, or its footer is missing.
    #[error(
        "table {table}: part file {path} is damaged: {reason}; run `anchor repair` or re-run the step with --force"
    )]
    DamagedPart {
        /// Table name.
        table: String,
        /// The part file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A file's schema differs from the table's declared schema.
    #[error("table {table}: {path}: schema mismatch: {detail}")]
    SchemaMismatch {
        /// Table name.
        table: String,
        /// The part file (or batch origin).
        path: PathBuf,
        /// Which columns differ and how.
        detail: String,
    },
    /// A column is missing or has an unexpected type.
    #[error("table {table}: column {column}: {detail}")]
    Column {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// What is wrong.
        detail: String,
    },
    /// A row's values break a rule of its table (a subject span outside its caption, ...).
    #[error("table {table}: row {id}: {detail}")]
    Row {
        /// Table name.
        table: String,
        /// The row's id.
        id: String,
        /// What is wrong.
        detail: String,
    },
    /// A step's input table has not been produced (or not completely).
    #[error("input table {table} is not ready: {reason}")]
    InputNotReady {
        /// Table name.
        table: String,
        /// Why (missing, partial, ...).
        reason: String,
    },
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A ledger or marker file could not be parsed.
    #[error("ledger {path}: {detail}")]
    Ledger {
        /// The ledger or marker file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A step failed on one of its parts.
    #[error("step {step}, part {part}: {source}")]
    Part {
        /// Step name.
        step: String,
        /// Part index.
        part: usize,
        /// The step's own error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A step's parameters could not be written down for its fingerprint.
    #[error("step {step}: parameters: {source}")]
    Params {
        /// Step name.
        step: String,
        /// The serialisation error.
        source: serde_json::Error,
    },
    /// A step failed outside any part (planning, finishing).
    #[error("step {step}: {source}")]
    Step {
        /// Step name.
        step: String,
        /// The step's own error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for errors the user fixes (config, missing inputs) rather than
    /// internal failures; the CLI maps the two to different exit codes.
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Config(_) | Error::InputNotReady { .. })
    }
}

/// Adds a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
