//! Prints `FILE PHASH DHASH` per argument, as `anchor hash` will.
//!
//! With `--dump DIR`, also writes each decoded image losslessly as `DIR/<name>.png`, so the
//! pixels our decoder produced can be hashed by Python `imagehash` to tell decoder
//! differences from hashing differences. `--repeat N` times the hashing of each image.

use std::path::PathBuf;

use anchor_filters::decode::{DecodeLimits, decode};
use anchor_filters::hash::hashes;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dump: Option<PathBuf> = None;
    let mut repeat = 0usize;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        if i + 1 >= args.len() {
            return Err("--repeat needs a count".into());
        }
        repeat = args.remove(i + 1).parse()?;
        args.remove(i);
    }
    if let Some(i) = args.iter().position(|a| a == "--dump") {
        if i + 1 >= args.len() {
            return Err("--dump needs a directory".into());
        }
        dump = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    for file in &args {
        let bytes = std::fs::read(file)?;
        match decode(&bytes, &DecodeLimits::default()) {
            Ok(d) => {
                let h = hashes(&d.image);
                println!("{file} {} {}", h.phash, h.dhash);
                if repeat > 0 {
                    let t = std::time::Instant::now();
                    for _ in 0..repeat {
                        std::hint::black_box(hashes(std::hint::black_box(&d.image)));
                    }
                    let (w, h) = (d.image.width(), d.image.height());
                    let ms = t.elapsed().as_secs_f64() * 1e3 / repeat as f64;
                    eprintln!("{file} {w}x{h}: {ms:.3} ms per phash+dhash");
                }
                if let Some(dir) = &dump {
                    let name = PathBuf::from(file);
                    let stem = name.file_name().and_then(|s| s.to_str()).unwrap_or("image");
                    d.image.save_with_format(
                        dir.join(format!("{stem}.png")),
                        image::ImageFormat::Png,
                    )?;
                }
            }
            Err(e) => println!("{file} error {e}"),
        }
    }
    Ok(())
}
