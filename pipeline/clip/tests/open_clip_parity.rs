//! Parity with open_clip on a tiny random `CLIP` of the ViT-H-14 kind (exact GELU,
//! 10-wide attention heads), and with HPSv2's scoring of it.
//!
//! `tests/python/open_clip_reference.py` builds the model with a fixed seed, writes it
//! as an open_clip hub folder and as a half-precision `{"state_dict": ...}` checkpoint
//! (how HPSv2 ships), and records what open_clip computes: token ids, evaluation
//! transform pixels, `encode_image` / `encode_text`, and the HPSv2 scores. We load both
//! files and compare. Needs `ANCHOR_PYTHON` (a python with torch and open_clip) and
//! skips without it.

mod common;

use std::path::Path;

use common::{max_abs_diff, photos_checked, vocab};

use anchor_clip::open_clip::{OpenClip, OpenClipConfig, OpenClipSource, OpenClipWeights};
use candle_core::Device;
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    captions: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    pixel_values: Vec<Vec<f64>>,
    image_embeddings: Vec<Vec<f64>>,
    text_embeddings: Vec<Vec<f64>>,
    half_image_embeddings: Vec<Vec<f64>>,
    half_text_embeddings: Vec<Vec<f64>>,
    hps: Vec<f64>,
}

fn reference(dir: &Path) -> Option<Reference> {
    common::reference("open_clip_reference.py", dir, &[])
}

fn compare(what: &str, got: &[Vec<f32>], want: &[Vec<f64>], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = max_abs_diff(g, w);
        eprintln!("{what} {i}: max |diff| {d:.2e}");
        assert!(d < tol, "{what} {i} differs by {d}");
    }
}

#[test]
fn tokens_pixels_embeddings_and_hps_scores_match_open_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = reference(tmp.path()) else {
        return;
    };
    let hub = OpenClipSource::resolve(&tmp.path().join("hub"), None).unwrap();
    assert!(hub.weights.ends_with("open_clip_model.safetensors"));
    let model = OpenClip::load_on(&hub, &vocab(), &Device::Cpu).unwrap();
    assert_eq!(model.dim(), 16);

    for (caption, want) in r.captions.iter().zip(&r.input_ids) {
        let enc = model.tokenizer().tokenize(caption);
        assert_eq!(&enc.ids[..enc.len], &want[..enc.len], "{caption}");
        // open_clip pads with 0 after the end token and pools at the largest id (the end).
        let eot = want
            .iter()
            .enumerate()
            .max_by_key(|(i, id)| (**id, usize::MAX - i));
        assert_eq!(Some(enc.len - 1), eot.map(|(i, _)| i), "{caption}");
    }

    let images = photos_checked(model.processor(), &r.pixel_values, (64, 64), 1e-5);

    let image_embeddings = model.image_embeddings(&images).unwrap();
    compare("image", &image_embeddings, &r.image_embeddings, TOL);
    let captions: Vec<&str> = r.captions.iter().map(String::as_str).collect();
    let text_embeddings = model.text_embeddings(&captions).unwrap();
    compare("caption", &text_embeddings, &r.text_embeddings, TOL);
    // Different inputs give different embeddings (the comparison is not vacuous).
    assert!(max_abs_diff(&text_embeddings[0], &r.text_embeddings[1]) > 1e-2);

    for (i, want) in r.hps.iter().enumerate() {
        // hpsv2 L2-normalises both embeddings and takes their dot product.
        let unit = |v: &[f32]| {
            let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            v.iter().map(|&x| f64::from(x) / norm).collect::<Vec<_>>()
        };
        let (a, b) = (unit(&image_embeddings[i]), unit(&text_embeddings[i]));
        let got: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        eprintln!("hps {i}: {got:.6} vs {want:.6}");
        assert!((got - want).abs() < TOL, "HPSv2 score {i}: {got} vs {want}");
    }

    // HPSv2's own file: a half-precision pickle under `state_dict`, with the
    // architecture given separately.
    let config = OpenClipConfig::from_json(
        &std::fs::read(tmp.path().join("hub/open_clip_config.json")).unwrap(),
        "open_clip_config.json",
    )
    .unwrap()
    .0;
    let lone = OpenClipWeights::hashed(&tmp.path().join("checkpoint.pt"), Some(&config), &vocab())
        .unwrap();
    let half = lone.load_on(&Device::Cpu).unwrap();
    compare(
        "half image",
        &half.image_embeddings(&images).unwrap(),
        &r.half_image_embeddings,
        TOL,
    );
    compare(
        "half caption",
        &half.text_embeddings(&captions).unwrap(),
        &r.half_text_embeddings,
        TOL,
    );
    assert_ne!(half.sha256(), model.sha256());
}

#[test]
fn a_checkpoint_of_another_architecture_names_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_) = reference(tmp.path()) else {
        return;
    };
    // Refused from the pickle's index, before any weights are read.
    let e = OpenClipWeights::hashed(
        &tmp.path().join("checkpoint.pt"),
        Some(&OpenClipConfig::vit_h_14()),
        &vocab(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("checkpoint.pt"), "{e}");
    assert!(
        e.contains("visual.conv1.weight has shape [40, 3, 16, 16]"),
        "{e}"
    );
}
