//! The crate's error type: every variant names what it was loading or checking.

use std::path::PathBuf;

/// Errors of the SAFE model crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, missing tensor in a VarBuilder, ...).
    /// candle's own message names the tensor key when a weight is missing or mis-shaped.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A safetensors weight file could not be loaded or lacks a tensor the model needs.
    #[error("loading weights from {path}: {source}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// The cause; its message names the tensor key.
        source: candle_core::Error,
    },
    /// A diffusers/transformers `config.json` could not be parsed.
    #[error("parsing model config {path}: {source}")]
    ConfigJson {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A configuration is inconsistent (e.g. channels not divisible by heads).
    #[error("invalid {what} configuration: {reason}")]
    Config {
        /// Which model or scheduler.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An input has the wrong shape or length.
    #[error("invalid input {what}: {reason}")]
    Input {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
