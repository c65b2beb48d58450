//! Runs the demo scrape once and prints timing, per-host statistics and which
//! adapter parsed the pages.
//!
//! `cargo run -p anchor-scrape --example demo_scrape -- 200 /tmp/anchor-demo-out`

use std::collections::BTreeMap;
use std::time::Instant;

use anchor_core::step::{self, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::{articles, pairs};
use anchor_scrape::step::{ScrapeParams, ScrapeStep};
use arrow_array::Array;
use arrow_array::cast::AsArray;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().as_deref().unwrap_or("200").parse()?;
    let out =
        std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/anchor-demo-out".into()));
    let photos = std::path::PathBuf::from("data/models/photos");
    let started = Instant::now();
    let step = ScrapeStep::new(ScrapeParams::demo(n), photos.is_dir().then_some(photos))?;
    let outcome = step::run(&step, &out, &RunOptions::default())?;
    println!(
        "{n} articles in {:.1} s: {outcome:?}",
        started.elapsed().as_secs_f64()
    );
    for r in step.host_reports() {
        println!(
            "{} requests={} 429s={} bytes={} p50={:.1}ms p95={:.1}ms {:?}",
            r.host, r.requests, r.http_429, r.bytes, r.latency_p50_ms, r.latency_p95_ms, r.outcomes
        );
    }
    let mut adapters: BTreeMap<String, usize> = BTreeMap::new();
    for b in
        TableReader::open(&out, articles::NAME, None)?.read_all(Some(&[articles::ADAPTER]), 4096)
    {
        let b = b?;
        let col = b.column(0).as_string::<i32>();
        for i in 0..col.len() {
            let k = if col.is_null(i) {
                "-".to_owned()
            } else {
                col.value(i).to_owned()
            };
            *adapters.entry(k).or_default() += 1;
        }
    }
    println!("adapters: {adapters:?}");
    let reader = TableReader::open(&out, pairs::NAME, None)?;
    println!("pairs: {} rows", reader.num_rows()?);
    Ok(())
}
