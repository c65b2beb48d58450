//! Parity with transformers on a tiny random `CLIPModel`.
//!
//! `tests/python/clip_reference.py` builds the model with a fixed seed, saves it with
//! `save_pretrained` (plus a vocab.json/merges.txt made from open_clip's BPE file) and
//! writes the token ids, pixel values and embeddings that transformers
//! (`CLIPTokenizer`, `CLIPImageProcessorPil`, `get_image_features`,
//! `get_text_features`) computes. We load the same folder and compare. Needs
//! `ANCHOR_PYTHON` (a python with torch and transformers) and skips without it.

mod common;

use std::path::Path;

use common::{PHOTOS, max_abs_diff, photos_checked, vocab};

use anchor_clip::Clip;
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    captions: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    pixel_values: Vec<Vec<f64>>,
    image_embeddings: Vec<Vec<f64>>,
    text_embeddings: Vec<Vec<f64>>,
}

fn reference(dir: &Path) -> Option<Reference> {
    common::reference("clip_reference.py", dir, &[common::vocab()])
}

#[test]
fn tokens_pixels_and_embeddings_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = reference(tmp.path()) else {
        return;
    };
    let vocab = vocab();
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

    // Bit-exact Pillow resampling: only f32 rounding of the normalisation remains.
    let images = photos_checked(clip.processor(), &r.pixel_values, (224, 224), 1e-5);

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
