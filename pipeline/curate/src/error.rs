//! Errors of the score and curate steps.

/// Errors from anchor-curate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A curation algorithm failed (a missing or corrupt model, an encoder failure).
    #[error(transparent)]
    Curate(#[from] anchor_filters::Error),
    /// Building a record batch failed (a schema bug, not bad input).
    #[error("building a record batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] anchor_core::Error),
    /// The CLIP model failed to load or to run.
    #[error("CLIP: {0}")]
    Clip(String),
    /// A configuration value or the inputs are invalid.
    #[error("{0}")]
    Config(String),
}
