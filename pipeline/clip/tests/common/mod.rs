//! What the parity tests share: the repository's photos and vocabulary, and running a
//! Python reference script that writes `reference.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::de::DeserializeOwned;

pub const PHOTOS: [&str; 4] = ["astronaut.png", "chelsea.png", "camera.png", "coffee.png"];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn vocab() -> PathBuf {
    repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")
}

/// The photos, opened, and each one's pixels as `processor` preprocesses them
/// compared with the reference's (`want`, one row per photo) to `tol`.
pub fn photos_checked(
    processor: &anchor_clip::ImageProcessor,
    want: &[Vec<f64>],
    hw: (usize, usize),
    tol: f64,
) -> Vec<image::DynamicImage> {
    let images: Vec<image::DynamicImage> = PHOTOS
        .iter()
        .map(|p| image::open(repo().join("data/models/photos").join(p)).unwrap())
        .collect();
    for (i, img) in images.iter().enumerate() {
        let (pixels, size) = processor.process(img).unwrap();
        assert_eq!(size, hw);
        let d = max_abs_diff(&pixels, &want[i]);
        assert!(d < tol, "{}: pixel values differ by {d}", PHOTOS[i]);
    }
    images
}

pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

/// Runs `tests/python/<script> <dir> <args…> <photos…>` with `ANCHOR_PYTHON` and reads
/// the `reference.json` it writes into `dir`. `None` (with the reason on stderr) when
/// `ANCHOR_PYTHON` is unset or the vocabulary or photos are absent.
pub fn reference<T: DeserializeOwned>(script: &str, dir: &Path, args: &[PathBuf]) -> Option<T> {
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return None;
    };
    let photos: Vec<PathBuf> = PHOTOS
        .iter()
        .map(|p| repo().join("data/models/photos").join(p))
        .collect();
    if let Some(missing) = std::iter::once(&vocab())
        .chain(&photos)
        .find(|p| !p.exists())
    {
        eprintln!("skipping: {} absent (make models)", missing.display());
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let status = Command::new(python)
        .arg(&script)
        .arg(dir)
        .args(args)
        .args(&photos)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    let text = std::fs::read(dir.join("reference.json")).unwrap();
    Some(serde_json::from_slice(&text).unwrap())
}
