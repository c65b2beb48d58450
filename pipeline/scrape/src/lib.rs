//! The scrape machinery of anchor: a polite HTTP fetcher, the embedded demo
//! site with deliberate faults, URL-list and WARC sources, and the `scrape`
//! step that turns a source into the `articles` and `pairs` tables.
//!
//! - [`fetch`]: [`fetch::Fetcher`] — per-host rate limits (one governor
//!   limiter per host:port, slowed by robots.txt `Crawl-delay`), robots.txt
//!   cached per host and re-checked on every redirect, `X-Robots-Tag`
//!   honoured before the body is read, retries of transient failures only
//!   (exponential backoff, jitter seeded by the URL, `Retry-After`), body
//!   cap, `Content-Type` against magic bytes, image decode limits, refusal
//!   of loopback/private/link-local addresses. Every fetch ends with a
//!   [`outcome::FetchStatus`] and an [`outcome::ErrorClass`].
//! - [`demo`]: a deterministic five-outlet site served on 127.0.0.1 (one
//!   port per outlet), its faults a pure function of (URL, attempt), and its
//!   ground truth (`demo_truth`).
//! - [`url_list`], [`warc`]: the `urls:PATH` and `warc:PATH` sources, and
//!   `--record-warc` recording.
//! - [`outlets`], [`sitemap`], [`discover`]: the `live` source — the outlets
//!   file, sitemap/archive parsing, and discovery of the article list.
//! - [`collection`]: the `visualnews:PATH` and `nytimes800k:PATH` ingests.
//! - [`step`]: the `scrape` step on `anchor_core::step::Step`.
//!
//! Tables written: `articles`, `pairs` (both sorted by `id`), and
//! `demo_truth` for the demo source. Tables read: none.
//!
//! Invariants: rows are a pure function of the source and the responses (no
//! wall-clock in tables); ids are `anchor_core::ids` of canonical URLs; parts
//! are fixed-size chunks of the source's list, so a resumed run fetches only
//! the URLs of uncommitted parts; per-URL problems are row statuses, never
//! errors or panics; this crate imports no other step crate.
//!
//! ```no_run
//! use anchor_core::step::{self, RunOptions};
//! use anchor_scrape::step::{ScrapeParams, ScrapeStep};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scrape = ScrapeStep::new(ScrapeParams::demo(100), Some("data/models/photos".into()))?;
//! step::run(&scrape, std::path::Path::new("data/out"), &RunOptions::default())?;
//! for host in scrape.host_reports() {
//!     println!("{} {} requests, p95 {:.1} ms", host.host, host.requests, host.latency_p95_ms);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod address_policy;
pub mod collection;
pub mod demo;
pub mod discover;
pub mod error;
pub mod fetch;
pub mod image_check;
pub mod local_server;
pub mod outcome;
pub mod outlets;
pub mod robots;
pub mod sitemap;
pub mod sniff;
pub mod step;
pub mod url_list;
pub mod warc;

pub use error::{Error, Result};
pub use fetch::{Expect, FetchConfig, Fetched, Fetcher};
pub use outcome::{ErrorClass, FetchStatus};
