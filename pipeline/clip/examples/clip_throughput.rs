//! Embeds images and captions with a CLIP folder and prints images/s and texts/s.
//!
//! `cargo run -p anchor-clip --example clip_throughput -- DIR VOCAB IMAGE...`
//!
//! With `--random-b32` first, DIR is (over)written with a random model shaped as
//! `openai/clip-vit-base-patch32` (the default transformers configs), so the
//! timing is that of the real architecture, without real weights.

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let random = args.first().is_some_and(|a| a == "--random-b32");
    if random {
        args.remove(0);
    }
    if args.len() < 3 {
        return Err("usage: clip_throughput [--random-b32] DIR VOCAB IMAGE...".into());
    }
    let dir = Path::new(&args[0]);
    if random {
        anchor_clip::write_random_model(
            dir,
            &anchor_clip::TextConfig::default(),
            &anchor_clip::VisionConfig::default(),
            512,
            0,
        )?;
    }
    let t = Instant::now();
    let clip = anchor_clip::Clip::load(dir, Some(Path::new(&args[1])))?;
    println!(
        "loaded in {:.2} s, sha256 {}",
        t.elapsed().as_secs_f64(),
        clip.sha256()
    );
    let images = args[2..]
        .iter()
        .map(|p| image::open(p).map_err(|e| format!("{p}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Warm-up, then timed passes of 32 images.
    clip.image_embeddings(&images[..1])?;
    let batch: Vec<_> = images.iter().cycle().take(32).cloned().collect();
    let t = Instant::now();
    let emb = clip.image_embeddings(&batch)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "images: {} in {secs:.2} s = {:.1} images/s ({}-d)",
        emb.len(),
        emb.len() as f64 / secs,
        clip.dim()
    );
    let captions: Vec<String> = (0..64)
        .map(|i| format!("Officials arrive for talks in Brussels on day {i} of the summit"))
        .collect();
    let texts: Vec<&str> = captions.iter().map(String::as_str).collect();
    let t = Instant::now();
    let emb = clip.text_embeddings(&texts)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "texts: {} in {secs:.2} s = {:.1} texts/s",
        emb.len(),
        emb.len() as f64 / secs
    );
    Ok(())
}
