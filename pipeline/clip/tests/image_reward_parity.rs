//! Parity with the `image-reward` package on a tiny random ImageReward.
//!
//! `tests/python/image_reward_reference.py` builds the package's `ImageReward` at small
//! width with a fixed seed, saves its state dict, BERT configuration and vocabulary as
//! the folder `--image-reward` takes, and writes the token ids, the pixels of its
//! transform and `ImageReward.score(caption, image)` for every photo and caption. We
//! load the same folder and compare. Needs `ANCHOR_PYTHON` (a python with torch,
//! transformers, timm and image-reward) and skips without it.

mod common;

use std::path::Path;

use anchor_clip::image_reward::ImageRewardWeights;
use candle_core::Device;
use common::photos_checked;
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    captions: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    pixel_values: Vec<Vec<f64>>,
    /// Per photo, per caption.
    scores: Vec<Vec<f64>>,
}

fn reference(dir: &Path) -> Option<Reference> {
    common::reference("image_reward_reference.py", dir, &[])
}

#[test]
fn tokens_pixels_and_rewards_match_the_image_reward_package() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = reference(tmp.path()) else {
        return;
    };
    let weights = ImageRewardWeights::hashed(tmp.path()).unwrap();
    assert_eq!(weights.vision.image_size, 224);
    assert_eq!(weights.vision.width, 128);
    assert_eq!(weights.vision.depth, 2);
    let model = weights.load_on(&Device::Cpu).unwrap();

    for (i, caption) in r.captions.iter().enumerate() {
        let (ids, mask) = model.tokenize(caption).unwrap();
        assert_eq!(ids, r.input_ids[i], "{caption}");
        assert_eq!(mask, r.attention_mask[i], "{caption}");
    }
    // The long caption is truncated to 35 tokens with [SEP] kept, as the package does.
    assert_eq!(r.attention_mask[2].iter().sum::<u32>(), 35);

    let images = photos_checked(model.processor(), &r.pixel_values, (224, 224), 1e-5);
    let captions: Vec<&str> = r.captions.iter().map(String::as_str).collect();
    let mut spread = 0.0f64;
    for (i, image) in images.iter().enumerate() {
        let batch = vec![image.clone(); captions.len()];
        let got = model.scores(&batch, &captions).unwrap();
        for (j, (g, w)) in got.iter().zip(&r.scores[i]).enumerate() {
            eprintln!("photo {i} caption {j}: {g:.6} vs {w:.6}");
            assert!((g - w).abs() < TOL, "photo {i}, caption {j}: {g} vs {w}");
            spread = spread.max((w - r.scores[0][0]).abs());
        }
    }
    // The rewards differ across photos and captions by far more than the tolerance,
    // so the comparison is not vacuous.
    assert!(spread > 100.0 * TOL, "rewards spread only {spread}");
}
