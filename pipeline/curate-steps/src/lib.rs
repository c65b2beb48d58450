//! The two steps behind `anchor curate`, thin glue over the algorithms of `anchor-curate`:
//!
//! - [`score`]: per `pairs` part, in parallel: decode, hash, measure, NSFW → `pairs_scored`;
//! - [`curate`]: global: captions, thresholds, deduplication, keep/drop → `pairs_curated`.
#![warn(missing_docs)]

pub mod curate;
mod error;
pub mod score;

pub use error::Error;
