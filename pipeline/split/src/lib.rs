//! The back half of `make dataset`: leak-free splits and the published dataset.
//!
//! - [`split`]: groups kept pairs into connected components of (article, near-duplicate
//!   cluster) and assigns each group to `train`/`val`/`test` by the hash of its key (or by
//!   date), remembering earlier assignments so a group keeps its split as data grows → table
//!   `splits`.
//! - [`export`]: per `pairs` part, crops the kept images to their salient square and writes the
//!   Hugging Face layout `dataset/<subset>/<split>-NNNNN-of-MMMMM.parquet`.
//! - [`card`]: the dataset card `dataset/README.md` (YAML header with configs and splits,
//!   counts, the filtering funnel, the copyright notice), plus `funnel.parquet` and
//!   `stats.parquet`.
#![warn(missing_docs)]

pub mod card;
mod error;
pub mod export;
pub mod hf;
pub mod split;
mod topics;

pub use error::{Error, Result};

/// The three splits, in card order.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];
/// The two subsets, in card order.
pub const SUBSETS: [&str; 2] = ["entity", "non_entity"];
