//! Parity of the CLIP scores with the Python references on a tiny random `CLIPModel`:
//! `clip_iqa` against torchmetrics' `clip_image_quality_assessment` (default prompts) and
//! `clip_similarity` against the cosine of transformers' `get_image_features` /
//! `get_text_features`. `tests/python/clip_scores_reference.py` builds and saves the model;
//! we load the same folder. Needs `ANCHOR_PYTHON` (a python with torch, transformers and
//! torchmetrics: `make python`) and `make models`; skips without them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anchor_clip::Clip;
use anchor_curate::clip::ClipScorer;
use serde::Deserialize;

const PHOTOS: [&str; 5] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "camera.png",
    "rocket.jpg",
];

#[derive(Deserialize)]
struct Reference {
    captions: Vec<String>,
    clip_iqa: Vec<f64>,
    clip_similarity: Vec<f64>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
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
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clip_scores_reference.py");
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

fn logit(p: f64) -> f64 {
    p.ln() - (-p).ln_1p()
}

#[test]
fn clip_iqa_and_similarity_match_torchmetrics_and_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = reference(tmp.path()) else {
        return;
    };
    assert_eq!(r.clip_iqa.len(), PHOTOS.len());
    let scorer = ClipScorer::from_clip(Clip::load(tmp.path(), None).unwrap()).unwrap();
    let images: Vec<image::DynamicImage> = PHOTOS
        .iter()
        .map(|p| image::open(repo().join("data/models/photos").join(p)).unwrap())
        .collect();
    let captions: Vec<Option<&str>> = r.captions.iter().map(|c| Some(c.as_str())).collect();
    let got = scorer.score(&images, &captions).unwrap();
    for (i, g) in got.iter().enumerate() {
        let (want_iqa, want_sim) = (r.clip_iqa[i], r.clip_similarity[i]);
        let sim = f64::from(g.similarity.unwrap());
        let iqa = f64::from(g.iqa);
        eprintln!(
            "{}: clip_iqa {iqa:.6e} (torchmetrics {want_iqa:.6e}), \
             clip_similarity {sim:.6} (transformers {want_sim:.6})",
            PHOTOS[i]
        );
        assert!(
            (sim - want_sim).abs() < 1e-4,
            "{}: similarity {sim} vs {want_sim}",
            PHOTOS[i]
        );
        // The random model puts CLIP-IQA far from 0.5, so compare the logit (100 × the
        // cosine gap), where f32 rounding shows as an absolute error.
        assert!(
            (logit(iqa) - logit(want_iqa)).abs() < 1e-2,
            "{}: clip_iqa {iqa} vs {want_iqa}",
            PHOTOS[i]
        );
    }
    // Different images give different scores (the comparison is not vacuous).
    assert!((r.clip_iqa[0] - r.clip_iqa[1]).abs() > 1e-6);
    assert!((r.clip_similarity[0] - r.clip_similarity[1]).abs() > 1e-2);
}
