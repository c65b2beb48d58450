//! Times FID between two folders in phases (features of each folder, then the
//! Fréchet distance), for `scripts/bench-fid.sh`. Prints one JSON line.
//!
//! `cargo run --release -p anchor-eval --example bench_fid -- MODEL.pt DIR_A DIR_B [BATCH]`

use anchor_eval::FidInception;
use anchor_eval::sample_fid::fid_of_samples;
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, dir_a, dir_b, rest @ ..] = args.as_slice() else {
        return Err("usage: bench_fid MODEL.pt DIR_A DIR_B [BATCH]".into());
    };
    let batch: usize = rest.first().map_or(Ok(16), |s| s.parse())?;
    let start = Instant::now();
    let net = FidInception::load(model, &candle_core::Device::Cpu)?;
    let load_s = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let a = net.features_of_dir(Path::new(dir_a), batch)?;
    let features_a_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let b = net.features_of_dir(Path::new(dir_b), batch)?;
    let features_b_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fid = anchor_eval::fid(&a, &b)?;
    let frechet_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fid_samples = fid_of_samples(&a, &b)?;
    let frechet_samples_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"images\": {}, \"load_s\": {load_s:.3}, \"features_s\": {:.3}, \"frechet_s\": {frechet_s:.3}, \"fid\": {fid:.6}, \"frechet_samples_s\": {frechet_samples_s:.3}, \"fid_samples\": {fid_samples:.6}, \"total_s\": {:.3}}}",
        a.rows() + b.rows(),
        features_a_s + features_b_s,
        load_s + features_a_s + features_b_s + frechet_s
    );
    Ok(())
}
