//! The two steps behind `anchor curate`, thin glue over the algorithms of `anchor-filters`:
//!
//! - [`score`]: per `pairs` part, in parallel: decode, hash, measure, NSFW and, with CLIP
//!   weights, the [`clip`] scores → `pairs_scored`;
//! - [`curate`]: global: captions, thresholds, deduplication, keep/drop → `pairs_curated`.
#![warn(missing_docs)]

pub mod clip;
pub mod curate;
mod error;
pub mod score;

pub use error::Error;
