//! Shared foundation of the anchor pipeline: the Parquet table store, the
//! ledger, configuration, sharding and the step runner.
//!
//! Every pipeline stage is a [`step::Step`]: it reads named tables, writes its
//! own tables, and is run by [`step::run`], which makes it
//!
//! - **idempotent**: a second run with the same parameters and inputs does
//!   nothing and reports [`step::Outcome::UpToDate`];
//! - **resumable**: work is cut into deterministic parts, each committed by a
//!   rename, so a killed run resumes from the committed parts and ends with
//!   exactly the bytes of an uninterrupted run;
//! - **fingerprinted**: the [`ledger`] records, per step, the fingerprint of
//!   (name, version, params, input fingerprints); a changed fingerprint makes
//!   the step stale;
//! - **shardable**: `--shard I/N` runs the parts whose index is I mod N.
//!
//! Tables are declared once in [`tables`] and documented in `schemas/`.
//! This crate knows no step and no command-line parser.
//!
//! ```no_run
//! use anchor_core::step::{self, RunOptions};
//! # fn demo(my_step: &dyn step::Step) -> anchor_core::Result<()> {
//! let outcome = step::run(my_step, std::path::Path::new("data/out"), &RunOptions::default())?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod columns;
pub mod config;
pub mod error;
pub mod ids;
pub mod ledger;
pub mod outlet;
pub mod published;
pub mod rng;
pub mod shard;
pub mod stats;
pub mod step;
pub mod store;
pub mod tables;
pub mod time;

pub use error::{Error, Result};
pub use outlet::Outlet;
pub use shard::Shard;
pub use stats::PartStats;
