//! End-to-end tests that drive the real `anchor` binary, one module per topic.

mod annotate;
mod config;
mod curate_clip;
mod eval;
mod extract;
mod fid;
mod kill;
mod sample;
mod scrape;
mod study;
mod train;
mod util;
