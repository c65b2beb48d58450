//! `anchor config`, scales, overrides and config errors.

use crate::util::{Run, TestDir};

const CONFIG: &str = r#"
[paths]
out = "elsewhere/out"

[run]
jobs = 1

[scale.ci.run]
jobs = 2
"#;

#[test]
fn config_shows_file_scale_and_override_layers() {
    let dir = TestDir::new();
    let file = dir.write("my.toml", CONFIG);
    let plain = Run::of(dir.anchor().arg("--config").arg(&file).arg("config"))
        .success()
        .stdout();
    assert!(plain.contains("out = \"elsewhere/out\""), "{plain}");
    assert!(plain.contains("jobs = 1"), "{plain}");
    assert!(plain.contains("# scale: demo"), "{plain}");

    let ci = Run::of(
        dir.anchor()
            .arg("--config")
            .arg(&file)
            .args(["--scale", "ci", "config"]),
    )
    .success()
    .stdout();
    assert!(ci.contains("jobs = 2"), "{ci}");

    let set = Run::of(dir.anchor().arg("--config").arg(&file).args([
        "--scale",
        "ci",
        "--set",
        "run.jobs=5",
        "--out",
        "o2",
        "config",
    ]))
    .success()
    .stdout();
    assert!(
        set.contains("jobs = 5") && set.contains("out = \"o2\""),
        "{set}"
    );

    // SCALE from the environment, as `make ... SCALE=ci` passes it.
    let env = Run::of(
        dir.anchor()
            .arg("--config")
            .arg(&file)
            .env("SCALE", "ci")
            .arg("config"),
    )
    .success()
    .stdout();
    assert!(env.contains("jobs = 2"), "{env}");
}

#[test]
fn defaults_apply_without_a_config_file() {
    let dir = TestDir::new();
    let out = Run::of(dir.anchor().arg("config")).success().stdout();
    assert!(out.contains("built-in defaults"), "{out}");
    // Library settings print with the tool's keys of their section.
    for key in [
        "min_blur = 20.0",
        "languages = [\"eng\"]",
        "kid_subsets = 100",
        "grids = 4",
    ] {
        assert!(out.contains(key), "{key}: {out}");
    }
    assert!(out.contains("out = \"data/out\""), "{out}");
}

#[test]
fn config_mistakes_are_user_errors_that_say_what_is_wrong() {
    let dir = TestDir::new();
    let file = dir.write("my.toml", CONFIG);
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "run.jbos=3", "config"], "jbos"),
        (&["--set", "nonsense", "config"], "expected key=value"),
        (
            &["--set", "bogus.key=1", "config"],
            "unknown section [bogus]",
        ),
        (&["--scale", "huge", "config"], "unknown scale \"huge\""),
        // Sections read as a library's settings plus the tool's own keys: a misspelt key or
        // a wrong type in either part is named, and the split ratios are checked on reading.
        (
            &["--set", "curate.min_blr=3", "config"],
            "[curate]: unknown key `min_blr`",
        ),
        (
            &["--set", "curate.min_words=many", "config"],
            "in `min_words`",
        ),
        (
            &["--set", "eval.kid_subset=3", "config"],
            "[eval]: unknown key `kid_subset`",
        ),
        (&["--set", "eval.grids=-1", "config"], "in `grids`"),
        (
            &["--set", "train.stpes=3", "config"],
            "[train]: unknown key `stpes`",
        ),
        (&["--set", "train.lr=fast", "config"], "in `lr`"),
        (
            &["--set", "sample.seed=3", "config"],
            "[sample]: unknown key `seed`",
        ),
        (
            &["--set", "split.ratios=[0.5, 0.1, 0.1]", "config"],
            "must be non-negative and sum to 1",
        ),
    ];
    for (args, needle) in cases {
        let run = Run::of(dir.anchor().arg("--config").arg(&file).args(*args));
        assert_eq!(run.code(), Some(2), "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(needle), "{args:?}: {}", run.stderr());
    }
    let broken = dir.write("broken.toml", "[run\njobs = ");
    let run = Run::of(dir.anchor().arg("--config").arg(&broken).arg("config"));
    assert_eq!(run.code(), Some(2));
    assert!(run.stderr().contains("broken.toml"), "{}", run.stderr());
    let missing = Run::of(dir.anchor().args(["--config", "nope.toml", "config"]));
    assert_eq!(missing.code(), Some(2));
    assert!(
        missing.stderr().contains("nope.toml"),
        "{}",
        missing.stderr()
    );
}

/// The repository's `data/anchor.toml` at `--scale paper`: the paper's training recipe, and
/// every step builds from it (a key a settings struct does not know would fail `status`).
#[test]
fn the_paper_scale_sets_the_paper_recipe() {
    let dir = TestDir::new();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/anchor.toml");
    let paper = |args: &[&str]| {
        Run::of(
            dir.anchor()
                .arg("--config")
                .arg(&file)
                .args(["--scale", "paper", "--out", "out"])
                .args(args),
        )
        .success()
        .stdout()
    };
    let shown = paper(&["config"]);
    let train = shown
        .split("\n[train]\n")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or_else(|| panic!("no [train] section: {shown}"));
    for line in [
        "resolution = 512",
        "precision = \"f16\"",
        "lr = 0.0001",
        "rank = 4",
        "steps = 15000",
        "checkpoint_every = 500",
        "validation_every = 500",
    ] {
        assert!(train.contains(line), "{line} in\n{train}");
    }
    let sample = shown
        .split("\n[sample]\n")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or_else(|| panic!("no [sample] section: {shown}"));
    assert!(sample.contains("steps = 100"), "{sample}");
    let status = paper(&["status"]);
    assert!(
        status.contains("train") && status.contains("eval"),
        "{status}"
    );
}
