//! `anchor curate --clip DIR` end to end on the demo source, with a tiny random CLIP folder
//! (the test builds its own weights): the columns are null and the run says "CLIP scores
//! off" without weights; with them `pairs_curated` and, through `anchor run dataset
//! --set curate.clip=DIR`, the published dataset carry `clip_similarity` and `clip_iqa`;
//! the weights' content, not their path, decides whether `score` re-runs.

use std::path::{Path, PathBuf};

use arrow_array::{Array, Float32Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{Run, TestDir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Flags shared by every run: a small demo, the repository's models, the pure-Rust NSFW
/// runtime (no ONNX Runtime library needed).
fn common(models: &Path) -> Vec<String> {
    [
        "--set",
        "scrape.demo_articles=12",
        "--set",
        "scrape.articles_per_part=6",
        "--set",
        "curate.nsfw_runtime=tract",
        "--set",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("paths.models={}", models.display())])
    .collect()
}

fn read_dir_batches(dir: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(Result::unwrap));
    }
    out
}

/// (kept, clip_similarity, clip_iqa) of every `pairs_curated` row.
fn curated(out: &Path) -> Vec<(bool, Option<f32>, Option<f32>)> {
    let mut rows = Vec::new();
    for b in read_dir_batches(&out.join("pairs_curated")) {
        let kept = b.column_by_name("kept").unwrap();
        let kept = kept
            .as_any()
            .downcast_ref::<arrow_array::BooleanArray>()
            .unwrap();
        let (sim, iqa) = (floats(&b, "clip_similarity"), floats(&b, "clip_iqa"));
        for r in 0..b.num_rows() {
            rows.push((kept.value(r), opt(sim, r), opt(iqa, r)));
        }
    }
    rows
}

fn floats<'a>(b: &'a RecordBatch, name: &str) -> &'a Float32Array {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<Float32Array>()
        .unwrap_or_else(|| panic!("{name} is not Float32"))
}

fn opt(a: &Float32Array, r: usize) -> Option<f32> {
    (!a.is_null(r)).then(|| a.value(r))
}

#[test]
fn curate_clip_fills_the_columns_through_to_the_dataset() {
    let models = repo().join("data/models");
    for needed in ["open-nsfw.onnx", "open-clip/bpe_simple_vocab_16e6.txt.gz"] {
        if !models.join(needed).exists() {
            eprintln!("skipping: data/models/{needed} absent (make models)");
            return;
        }
    }
    let dir = TestDir::new();
    let out = dir.path().join("data/out");
    let clip = dir.path().join("clip");
    anchor_clip::write_random_model(
        &clip,
        &anchor_clip::TextConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            ..anchor_clip::TextConfig::default()
        },
        &anchor_clip::VisionConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            patch_size: 32,
            ..anchor_clip::VisionConfig::default()
        },
        8,
        0,
    )
    .unwrap();
    let flags = common(&models);
    Run::of(dir.anchor().args(&flags).arg("scrape")).success();

    // Without weights: null columns, and the run says so.
    let off = Run::of(dir.anchor().args(&flags).arg("curate")).success();
    assert!(
        off.stdout()
            .contains("score: CLIP scores off (pass --clip DIR"),
        "{}",
        off.stdout()
    );
    let rows = curated(&out);
    assert!(rows.iter().any(|r| r.0), "nothing kept: {rows:?}");
    assert!(rows.iter().all(|r| r.1.is_none() && r.2.is_none()));

    // A threshold without weights is refused, not ignored.
    let refused = Run::of(
        dir.anchor()
            .args(&flags)
            .args(["curate", "--min-clip-iqa", "0.5"]),
    );
    assert_eq!(refused.code(), Some(2), "{}", refused.stderr());
    assert!(
        refused
            .stderr()
            .contains("min_clip_iqa = 0.5 needs CLIP weights"),
        "{}",
        refused.stderr()
    );

    // With weights: score re-runs and every kept pair has both scores.
    let on = Run::of(
        dir.anchor()
            .args(&flags)
            .arg("curate")
            .arg("--clip")
            .arg(&clip),
    )
    .success();
    let stdout = on.stdout();
    assert!(stdout.contains("score: done"), "{stdout}");
    assert!(stdout.contains("score: CLIP scores on"), "{stdout}");
    let rows = curated(&out);
    let kept: Vec<_> = rows.iter().filter(|r| r.0).collect();
    assert!(!kept.is_empty());
    for (_, sim, iqa) in &kept {
        let (sim, iqa) = (sim.expect("similarity"), iqa.expect("clip_iqa"));
        assert!((-1.0..=1.0).contains(&sim) && (0.0..=1.0).contains(&iqa));
    }

    // The same weights elsewhere: the path is not a parameter, so nothing re-runs.
    let moved = dir.path().join("clip-copy");
    std::fs::create_dir_all(&moved).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(clip.join(f), moved.join(f)).unwrap();
    }
    let again = Run::of(
        dir.anchor()
            .args(&flags)
            .arg("curate")
            .arg("--clip")
            .arg(&moved),
    )
    .success();
    assert!(
        again.stdout().contains("score: up to date"),
        "{}",
        again.stdout()
    );
    assert!(
        again.stdout().contains("curate: up to date"),
        "{}",
        again.stdout()
    );

    // The chain with the config key: the dataset carries the scores of its kept pairs.
    let chain = Run::of(
        dir.anchor()
            .args(&flags)
            .arg("--set")
            .arg(format!("curate.clip={}", clip.display()))
            .args(["run", "dataset"]),
    )
    .success();
    assert!(
        chain.stdout().contains("score: up to date"),
        "{}",
        chain.stdout()
    );
    let mut exported = 0;
    for subset in ["entity", "non_entity"] {
        let sub = out.join("dataset").join(subset);
        if !sub.exists() {
            continue;
        }
        for b in read_dir_batches(&sub) {
            let ids = b.column_by_name("id").unwrap();
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            let (sim, iqa) = (floats(&b, "clip_similarity"), floats(&b, "clip_iqa"));
            for r in 0..b.num_rows() {
                assert!(
                    !sim.is_null(r) && !iqa.is_null(r),
                    "{} lacks CLIP scores",
                    ids.value(r)
                );
                exported += 1;
            }
        }
    }
    assert_eq!(exported, kept.len());
    let card = std::fs::read_to_string(out.join("dataset/README.md")).unwrap();
    let n = kept.len();
    assert!(
        card.contains(&format!("are filled for {n} of the {n} kept pairs")),
        "{card}"
    );

    // `anchor measure`: both fields with --clip and --caption, both null without --clip.
    let photo = models.join("photos/camera.png");
    let scored = Run::of(
        dir.anchor()
            .args(&flags)
            .arg("measure")
            .arg("--clip")
            .arg(&clip)
            .args(["--caption", "A man holds a camera in a park"])
            .arg(&photo),
    )
    .success();
    let line: serde_json::Value = serde_json::from_str(scored.stdout().trim()).unwrap();
    let sim = line["clip_similarity"].as_f64().expect("clip_similarity");
    let iqa = line["clip_iqa"].as_f64().expect("clip_iqa");
    assert!(
        (-1.0..=1.0).contains(&sim) && (0.0..=1.0).contains(&iqa),
        "{line}"
    );
    let plain = Run::of(dir.anchor().args(&flags).arg("measure").arg(&photo)).success();
    let line: serde_json::Value = serde_json::from_str(plain.stdout().trim()).unwrap();
    assert!(
        line["clip_similarity"].is_null() && line["clip_iqa"].is_null(),
        "{line}"
    );
}
