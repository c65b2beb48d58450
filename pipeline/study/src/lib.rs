//! A human preference study of generated images, as the paper runs one: raters see two
//! images for a caption and answer which better shows the caption's subjects and which is
//! of better quality.
//!
//! - [`make`]: the `study` step, `generations` + `pairs` → `study_pairs`: for every pair of
//!   configurations the same number of (caption, seed) items, left and right balanced and
//!   randomised, with attention-check pairs mixed in.
//! - [`server`]: the rating page and its JSON API on 127.0.0.1; each rater gets their own
//!   order and resumes where they stopped; every vote goes to the `votes` table at once.
//! - [`report`]: win rates per configuration pair with 95% bootstrap intervals, a
//!   Bradley–Terry ranking per question, and per-rater attention-check accuracy.

#![warn(missing_docs)]

pub mod error;
pub mod make;
pub mod report;
pub mod server;
pub mod store;

pub use error::{Error, Result};
