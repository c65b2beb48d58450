//! The crate's error type: every variant names the file, table, configuration or setting it is about.

use std::path::PathBuf;

/// Errors of the sampling step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model crate failed (loading weights, a tensor op, a bad model config).
    #[error(transparent)]
    Model(#[from] anchor_sd::Error),
    /// A tensor operation outside the model crate failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The table store or ledger failed.
    #[error(transparent)]
    Core(#[from] anchor_core::Error),
    /// The CLIP vocabulary could not be loaded.
    #[error(transparent)]
    Tokenizer(#[from] anchor_clip_tokenizer::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The training manifest is unreadable or inconsistent.
    #[error("train manifest {path}: {reason}")]
    Manifest {
        /// `<out>/train/models/manifest.json`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No base model was given and training has not written one.
    #[error(
        "no base model: {reason}; pass --base PATH (a diffusers folder with unet/, vae/, text_encoder/) or run `make train` to build the demo base"
    )]
    NoBase {
        /// Why none was found.
        reason: String,
    },
    /// A configuration needs a LoRA that is not there.
    #[error(
        "configuration {configuration} needs the `{lora}` LoRA, but {reason}; run `make train` (or pass --lora {lora}=PATH)"
    )]
    MissingLora {
        /// The configuration (`lora`, `lora+weighting`, `safe`).
        configuration: String,
        /// The LoRA's name in the manifest (`lora` or `safe`).
        lora: String,
        /// Why it is missing.
        reason: String,
    },
    /// A setting is invalid (flag or config key).
    #[error("sample: {0}")]
    Config(String),
    /// The model does not fit the tokenizer or the requested resolution.
    #[error("model {base}: {reason}")]
    Incompatible {
        /// The base model folder.
        base: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// An input table has a column of an unexpected type or a bad value.
    #[error("table {table}: column {column}: {detail}")]
    Input {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An output batch could not be built.
    #[error("building generations rows: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// PNG encoding failed.
    #[error("encoding {path} as PNG: {source}")]
    Png {
        /// The image's path in the table (`<configuration>/<id>-<seed>.png`).
        path: String,
        /// The cause.
        source: png::EncodingError,
    },
}

impl Error {
    /// Errors the user fixes by changing flags, config or running an earlier step.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::NoBase { .. }
                | Error::MissingLora { .. }
                | Error::Config(_)
                | Error::Manifest { .. }
                | Error::Incompatible { .. }
        ) || matches!(self, Error::Core(e) if e.is_user_error())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
