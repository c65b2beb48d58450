//! End-to-end tests that drive the real `anchor` binary, one module per topic.

mod config;
mod extract;
mod fid;
mod scrape;
mod util;
