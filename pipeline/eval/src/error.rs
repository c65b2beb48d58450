//! The crate's error type: every variant names what it was reading.

use std::path::PathBuf;

/// Errors of the evaluation library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TorchScript archive is not a readable zip, or lacks an entry.
    #[error("TorchScript archive {path}, entry {entry}: {reason}")]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// The zip entry (`data.pkl`, `data/12`, ...), or `-` for the archive itself.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A pickle stream could not be decoded.
    #[error("unpickling {entry} at byte {offset}: {reason}")]
    Pickle {
        /// The zip entry being decoded.
        entry: String,
        /// Byte offset of the failing opcode.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is missing or has the wrong shape.
    #[error("tensor {name}: {reason}")]
    Tensor {
        /// Dotted tensor name (`net.layers.conv.weight`).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An attribute of a module (stride, padding) is missing or of the wrong kind.
    #[error("module {module}: {reason}")]
    Module {
        /// Dotted module path.
        module: String,
        /// What is wrong.
        reason: String,
    },
    /// An image could not be decoded.
    #[error("decoding image {path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// Feature matrices have inconsistent shapes or too few rows.
    #[error("features: {0}")]
    Shape(String),
    /// The eigendecomposition did not converge.
    #[error("eigendecomposition of a {dim}x{dim} matrix did not converge")]
    Eigen {
        /// Matrix dimension.
        dim: usize,
    },
    /// An input table is unreadable, or its rows contradict each other.
    #[error("table {table}: {detail}")]
    Table {
        /// The table (`generations`, `splits`, ...).
        table: String,
        /// What is wrong, naming the row or column.
        detail: String,
    },
    /// The table store (ledger, part files) failed.
    #[error(transparent)]
    Store(#[from] anchor_core::Error),
    /// A file under the output folder (feature cache, report, grid) could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("encoding {path}: {source}")]
    Encode {
        /// The image file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// A candle operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The CLIP model could not be loaded or run.
    #[error(transparent)]
    Clip(#[from] anchor_clip::Error),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
