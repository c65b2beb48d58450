//! Parity with transformers on a tiny random `CLIPModel`.
//!
//! `tests/python/clip_reference.py` builds the model with a fixed seed, saves it with
//! `save_pretrained` (plus a vocab.json/merges.txt made from open_clip's BPE file) and
//! writes the token ids, pixel values and embeddings that transformers
//! (`CLIPTokenizer`, `CLIPImageProcessorPil`, `get_image_features`,
//! `get_text_features`) computes. We load the same folder and compare. Needs
//! `ANCHOR_PYTHON` (a python with torch and transformers) and skips without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anchor_clip::Clip;
use serde::Deserialize;

const TOL: f64 = 1e-4;
const PHOTOS: [&str; 4] = ["astronaut.png", "chelsea.png", "camera.png", "coffee.png"];

#[derive(Deserialize)]
struct Reference {
    captions: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    pixel_values: Vec<Vec<f64>>,
    image_embeddings: Vec<Vec<f64>>,
    text_embeddings: Vec<Vec<f64>>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

fn reference(dir: &Path) -> Option<Reference> {
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return None;
    };
    let vocab = repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    let photos: Vec<PathBuf> = PHOTOS
        .iter()
        .map(|p| repo().join("data/models/photos").join(p))
        .collect();
    if let Some(missing) = std::iter::once(&vocab).chain(&photos).find(|p| !p.exists()) {
        eprintln!("skipping: {} absent (make models)", missing.display());
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clip_reference.py");
    let status = Command::new(python)
        .arg(&script)
        .arg(dir)
        .arg(&vocab)
        .args(&photos)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    let text = std::fs::read(dir.join("reference.json")).unwrap();
    Some(serde_json::from_slice(&text).unwrap())
}

#[test]
fn tokens_pixels_and_embeddings_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = reference(tmp.path()) else {
        return;
    };
    let vocab = repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    // The folder's merges.txt is what the model uses; the open_clip file must agree.
    let clip = Clip::load(tmp.path(), None).unwrap();
    let open_clip = anchor_clip_tokenizer::ClipTokenizer::from_file(&vocab).unwrap();

    for (caption, want) in r.captions.iter().zip(&r.input_ids) {
        for tok in [clip.tokenizer(), &open_clip] {
            let enc = tok.tokenize(caption);
            assert_eq!(&enc.ids[..enc.len], &want[..enc.len], "{caption}");
            // transformers pads with the end token; the first one is where it pools.
            let first_eos = want.iter().position(|&id| id == 49407).unwrap();
            assert_eq!(enc.len - 1, first_eos, "{caption}");
        }
    }
    assert!(
        clip.tokenizer().tokenize(&r.captions[2]).truncated
            || r.captions[2].split_whitespace().count() < 75,
        "the long caption exercises truncation only when it is long"
    );

    let images: Vec<image::DynamicImage> = PHOTOS
        .iter()
        .map(|p| image::open(repo().join("data/models/photos").join(p)).unwrap())
        .collect();
    for (i, img) in images.iter().enumerate() {
        let (pixels, hw) = clip.processor().process(img).unwrap();
        assert_eq!(hw, (224, 224));
        let d = max_abs_diff(&pixels, &r.pixel_values[i]);
        // Bit-exact Pillow resampling: only f32 rounding of the normalisation remains.
        assert!(d < 1e-5, "{}: pixel values differ by {d}", PHOTOS[i]);
    }

    let got = clip.image_embeddings(&images).unwrap();
    assert_eq!(got.len(), images.len());
    for (i, (g, w)) in got.iter().zip(&r.image_embeddings).enumerate() {
        assert_eq!(g.len(), 16);
        let d = max_abs_diff(g, w);
        eprintln!("image {}: max |diff| {d:.2e}", PHOTOS[i]);
        assert!(d < TOL, "{}: image embedding differs by {d}", PHOTOS[i]);
    }
    let captions: Vec<&str> = r.captions.iter().map(String::as_str).collect();
    let got = clip.text_embeddings(&captions).unwrap();
    for (i, (g, w)) in got.iter().zip(&r.text_embeddings).enumerate() {
        let d = max_abs_diff(g, w);
        eprintln!("caption {i}: max |diff| {d:.2e}");
        assert!(d < TOL, "caption {i}: text embedding differs by {d}");
    }
    // Different inputs give different embeddings (the comparison is not vacuous).
    assert!(max_abs_diff(&got[0], &r.text_embeddings[1]) > 1e-2);
    assert_eq!(clip.sha256().len(), 64);
    assert_eq!(
        clip.sha256(),
        anchor_clip::sha256_file(&tmp.path().join("model.safetensors")).unwrap()
    );
}
