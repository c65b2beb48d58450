//! Measures FID Inception feature extraction speed on synthetic 512x384 images
//! (preprocessing included, decoding not).
//!
//! `cargo run -p anchor-eval --example inception_throughput -- MODEL.pt [IMAGES] [BATCH]`

use anchor_eval::FidInception;
use anchor_eval::inception::preprocess::RgbImage;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: inception_throughput MODEL.pt [IMAGES] [BATCH]")?;
    let n: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    let batch: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let net = FidInception::load(&model, &candle_core::Device::Cpu)?;
    let images: Vec<RgbImage> = (0..n)
        .map(|k| {
            let (width, height) = (512, 384);
            let pixels = (0..width * height * 3)
                .map(|i| ((i * 31 + k * 17) % 251) as u8)
                .collect();
            RgbImage {
                width,
                height,
                pixels,
            }
        })
        .collect();
    let start = Instant::now();
    let mut rows = 0;
    for chunk in images.chunks(batch) {
        rows += net.features(chunk)?.rows();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{rows} images in {secs:.2}s: {:.2} images/s (batch {batch})",
        rows as f64 / secs
    );
    Ok(())
}
