//! The crate's error type: every variant names what it was reading, checking or training.

use std::path::PathBuf;

/// Errors of the training crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model operation failed.
    #[error(transparent)]
    Safe(#[from] anchor_sd::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading the input tables failed.
    #[error(transparent)]
    Core(#[from] anchor_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input row or file is unusable.
    #[error("invalid {what}: {reason}")]
    Input {
        /// What was being read.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid training setting {what}: {reason}")]
    Config {
        /// The setting.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint exists but cannot be used.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The CLIP vocabulary could not be loaded.
    #[error(transparent)]
    Tokenizer(#[from] anchor_clip_tokenizer::Error),
    /// Training diverged.
    #[error("{configuration}: loss is {loss} at step {step} (diverged)")]
    Diverged {
        /// What was being trained.
        configuration: String,
        /// Optimiser step.
        step: u64,
        /// The loss value.
        loss: f64,
    },
    /// The processes of a data-parallel run could not meet or exchange gradients.
    #[error("data-parallel rank {rank} of {world_size}: {detail}")]
    Group {
        /// This process's rank.
        rank: usize,
        /// Number of processes.
        world_size: usize,
        /// What failed.
        detail: String,
    },
    /// A gradient overflowed or became NaN where no loss scaler can skip the step.
    #[error(
        "{configuration}: the gradient norm is {grad_norm} at step {step} (diverged; f16 runs skip such steps, f32/bf16 runs stop)"
    )]
    NonFiniteGradient {
        /// What was being trained.
        configuration: String,
        /// Optimiser step.
        step: u64,
        /// The global gradient norm.
        grad_norm: f64,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds the path to an `std::io::Result`.
pub(crate) trait IoAt<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
