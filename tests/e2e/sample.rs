//! `anchor sample` end to end with a tiny random model written by the test: the
//! `generations` rows, decodable PNGs, up to date on a re-run, stale on a parameter change,
//! byte-identical on a forced re-run, subject weighting and the prefix prompt.

use std::path::{Path, PathBuf};

use anchor_sample::testing::{FixtureCaption, write_inputs, write_random_base, write_random_lora};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};

use crate::util::{Run, TestDir};

const MERKEL: &str = "Chancellor Angela Merkel arrives for talks in Brussels";
const RAIN: &str = "Rain falls on an empty street at dusk";

fn vocab() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is missing (run scripts/fetch-models.sh clip-vocab)",
            p.display()
        );
        None
    }
}

fn caption(id: &str, text: &str, split: &str, kept: bool, subjects: &[&str]) -> FixtureCaption {
    FixtureCaption {
        id: id.into(),
        caption: text.into(),
        split: split.into(),
        subset: if subjects.is_empty() {
            "non_entity"
        } else {
            "entity"
        }
        .into(),
        outlet: "bbc".into(),
        topic: if subjects.is_empty() {
            "environment"
        } else {
            "world"
        }
        .into(),
        kept,
        subjects: Some(subjects.iter().map(|s| (s.to_string(), 1.21)).collect()),
    }
}

/// A test dir with a random base at `model/` and inputs under `out/`: two test captions
/// (one with subjects, one without), one train caption and one dropped test caption.
fn setup() -> Option<(TestDir, PathBuf)> {
    let vocab = vocab()?;
    let dir = TestDir::new();
    write_random_base(&dir.path().join("model")).expect("write random model");
    write_inputs(
        &dir.path().join("out"),
        &[
            caption("a1", MERKEL, "test", true, &["Angela Merkel", "Brussels"]),
            caption("b2", RAIN, "test", true, &[]),
            caption(
                "c3",
                "A train caption about Paris",
                "train",
                true,
                &["Paris"],
            ),
            caption("d4", "A dropped caption", "test", false, &[]),
        ],
    )
    .expect("write input tables");
    Some((dir, vocab))
}

fn sample(dir: &TestDir, vocab: &Path, extra: &[&str]) -> Run {
    let mut cmd = dir.anchor();
    cmd.args([
        "--out",
        "out",
        "sample",
        "--base",
        "model",
        "--resolution",
        "16",
    ])
    .args(["--steps", "2", "--vocab"])
    .arg(vocab)
    .args(extra);
    Run::of(&mut cmd)
}

struct Gen {
    id: String,
    configuration: String,
    seed: i64,
    prompt: String,
    topic: String,
    model_id: String,
    png: Vec<u8>,
    path: String,
}

fn part_files(out: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("generations"))
        .expect("generations folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

fn read_generations(out: &Path) -> Vec<Gen> {
    let mut rows = Vec::new();
    for file in part_files(out) {
        let batches: Vec<RecordBatch> = anchor_core::store::read_file(&file).expect("read part");
        for b in batches {
            let s = |name: &str| {
                b.column_by_name(name)
                    .expect(name)
                    .as_string::<i32>()
                    .clone()
            };
            let (id, conf, prompt, model) =
                (s("id"), s("configuration"), s("prompt"), s("model_id"));
            let topic = s("topic");
            let seed = b
                .column_by_name("seed")
                .expect("seed")
                .as_primitive::<Int64Type>()
                .clone();
            let image = b
                .column_by_name("image")
                .expect("image")
                .as_struct()
                .clone();
            let bytes = image
                .column_by_name("bytes")
                .expect("bytes")
                .as_binary::<i32>()
                .clone();
            let paths = image
                .column_by_name("path")
                .expect("path")
                .as_string::<i32>()
                .clone();
            for i in 0..b.num_rows() {
                assert!(!bytes.is_null(i));
                rows.push(Gen {
                    id: id.value(i).into(),
                    configuration: conf.value(i).into(),
                    seed: seed.value(i),
                    prompt: prompt.value(i).into(),
                    topic: topic.value(i).into(),
                    model_id: model.value(i).into(),
                    png: bytes.value(i).to_vec(),
                    path: paths.value(i).into(),
                });
            }
        }
    }
    rows
}

fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let image = anchor_sample::png::decode_png(bytes).expect("decodable PNG");
    assert_eq!(image.data.len(), image.width * image.height * 3);
    (image.width as u32, image.height as u32)
}

fn find<'a>(rows: &'a [Gen], conf: &str, id: &str, seed: i64) -> &'a Gen {
    rows.iter()
        .find(|r| r.configuration == conf && r.id == id && r.seed == seed)
        .unwrap_or_else(|| panic!("no row {conf}/{id}/{seed}"))
}

#[test]
fn sample_writes_generations_reruns_and_weights_subjects() {
    let Some((dir, vocab)) = setup() else { return };
    let out = dir.path().join("out");
    let args = [
        "--configurations",
        "base,weighting,prefix",
        "--seeds",
        "371,42",
        "--images-per-part",
        "4",
    ];
    let first = sample(&dir, &vocab, &args).success();
    assert!(
        first.stdout().contains("sample: done"),
        "{}",
        first.stdout()
    );
    assert!(first.stdout().contains("images/s"), "{}", first.stdout());

    let rows = read_generations(&out);
    // 2 test captions (kept) x 3 configurations x 2 seeds, sorted by (configuration, id, seed).
    let keys: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.configuration.clone(), r.id.clone(), r.seed))
        .collect();
    let mut expected = Vec::new();
    for conf in ["base", "prefix", "weighting"] {
        for id in ["a1", "b2"] {
            for seed in [42, 371] {
                expected.push((conf.to_owned(), id.to_owned(), seed));
            }
        }
    }
    assert_eq!(keys, expected);
    assert_eq!(part_files(&out).len(), 3, "12 images, 4 per part");
    for r in &rows {
        assert_eq!(decode_png(&r.png), (16, 16), "{}", r.path);
        assert_eq!(
            r.path,
            format!("{}/{}-{}.png", r.configuration, r.id, r.seed)
        );
        assert_eq!(r.model_id.len(), 64, "base digest: {}", r.model_id);
        let topic = if r.id == "a1" { "world" } else { "environment" };
        assert_eq!(r.topic, topic, "the caption's topic, from pairs_curated");
    }

    // The prompt column: the caption, or the prefix form when there are subjects.
    assert_eq!(find(&rows, "base", "a1", 42).prompt, MERKEL);
    assert_eq!(
        find(&rows, "prefix", "a1", 42).prompt,
        format!("A photo of Angela Merkel, Brussels. {MERKEL}")
    );
    assert_eq!(find(&rows, "prefix", "b2", 42).prompt, RAIN);

    // Weighting changes the image of a caption with subjects and nothing else.
    for seed in [42, 371] {
        assert_ne!(
            find(&rows, "base", "a1", seed).png,
            find(&rows, "weighting", "a1", seed).png,
            "weighting left the subject caption unchanged (seed {seed})"
        );
        assert_eq!(
            find(&rows, "base", "b2", seed).png,
            find(&rows, "weighting", "b2", seed).png,
            "weighting changed a caption without subjects (seed {seed})"
        );
    }
    // Different seeds, different noise.
    assert_ne!(
        find(&rows, "base", "a1", 42).png,
        find(&rows, "base", "a1", 371).png
    );

    // Same parameters: up to date, nothing rewritten.
    let again = sample(&dir, &vocab, &args).success();
    assert!(
        again.stdout().contains("sample: up to date"),
        "{}",
        again.stdout()
    );

    // Forced: byte-identical parts.
    let before: Vec<Vec<u8>> = part_files(&out)
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let mut forced_args = args.to_vec();
    forced_args.push("--force");
    sample(&dir, &vocab, &forced_args).success();
    let after: Vec<Vec<u8>> = part_files(&out)
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert!(before == after, "a forced re-run changed the parquet bytes");

    // A parameter change makes it stale and reruns.
    let changed = sample(&dir, &vocab, &["--configurations", "base", "--seeds", "42"]).success();
    assert!(
        changed.stdout().contains("sample: done"),
        "{}",
        changed.stdout()
    );
    let rows = read_generations(&out);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.configuration == "base" && r.seed == 42)
    );
}

#[test]
fn lora_configurations_need_train_and_use_the_manifest() {
    let Some((dir, vocab)) = setup() else { return };
    let missing = sample(&dir, &vocab, &["--configurations", "lora", "--seeds", "42"]);
    assert_eq!(missing.code(), Some(2), "{}", missing.stderr());
    assert!(
        missing.stderr().contains("make train"),
        "{}",
        missing.stderr()
    );
    assert!(
        missing.stderr().contains("configuration lora"),
        "{}",
        missing.stderr()
    );

    // What `anchor train` leaves behind: LoRA files and the manifest.
    let models = dir.path().join("out/train/models");
    let lora = models.join("lora/lora/pytorch_lora_weights.safetensors");
    let safe = models.join("lora/safe/pytorch_lora_weights.safetensors");
    write_random_lora(&dir.path().join("model"), &lora, 0.5).expect("lora");
    write_random_lora(&dir.path().join("model"), &safe, 0.5).expect("safe lora");
    let manifest = serde_json::json!({
        "base": dir.path().join("model"),
        "base_id": "test-base",
        "resolution": 16,
        "loras": {
            "lora": {"path": lora, "sha256": ""},
            "safe": {"path": safe, "sha256": ""},
        },
    });
    std::fs::write(models.join("manifest.json"), manifest.to_string()).expect("manifest");

    // No --base, no --resolution: both come from the manifest.
    let mut cmd = dir.anchor();
    cmd.args([
        "--out", "out", "sample", "--steps", "2", "--seeds", "42", "--vocab",
    ])
    .arg(&vocab)
    .args(["--configurations", "base,lora,safe"]);
    let run = Run::of(&mut cmd).success();
    assert!(run.stdout().contains("sample: done"), "{}", run.stdout());
    let rows = read_generations(&dir.path().join("out"));
    assert_eq!(rows.len(), 6);
    assert_eq!(find(&rows, "base", "a1", 42).model_id, "test-base");
    let lora_id = &find(&rows, "lora", "a1", 42).model_id;
    assert!(lora_id.starts_with("test-base+lora:"), "{lora_id}");
    assert_ne!(lora_id, &find(&rows, "safe", "a1", 42).model_id);
    assert_eq!(decode_png(&find(&rows, "safe", "b2", 42).png), (16, 16));
    assert_ne!(
        find(&rows, "base", "b2", 42).png,
        find(&rows, "lora", "b2", 42).png,
        "the LoRA did not change the image"
    );
}

#[test]
fn prompt_mode_writes_one_png() {
    let Some((dir, vocab)) = setup() else { return };
    let mut cmd = dir.anchor();
    cmd.args([
        "sample",
        "--base",
        "model",
        "--resolution",
        "16",
        "--steps",
        "2",
        "--vocab",
    ])
    .arg(&vocab)
    .args([
        "--prompt",
        MERKEL,
        "--subject",
        "Angela Merkel",
        "--configurations",
        "prefix",
    ])
    .args(["--out-png", "img/one.png"]);
    let run = Run::of(&mut cmd).success();
    assert!(
        run.stdout().contains("A photo of Angela Merkel."),
        "{}",
        run.stdout()
    );
    let bytes = std::fs::read(dir.path().join("img/one.png")).expect("png written");
    assert_eq!(decode_png(&bytes), (16, 16));

    let mut bad = dir.anchor();
    bad.args([
        "sample",
        "--base",
        "model",
        "--resolution",
        "16",
        "--steps",
        "2",
        "--vocab",
    ])
    .arg(&vocab)
    .args([
        "--prompt",
        RAIN,
        "--subject",
        "Merkel",
        "--out-png",
        "x.png",
    ]);
    let bad = Run::of(&mut bad);
    assert_eq!(bad.code(), Some(2), "{}", bad.stderr());
    assert!(
        bad.stderr().contains("does not occur in the prompt"),
        "{}",
        bad.stderr()
    );

    // A resolution the tiny model cannot take fails before any part runs.
    let mut odd = dir.anchor();
    odd.args([
        "--out",
        "out",
        "sample",
        "--base",
        "model",
        "--resolution",
        "30",
    ])
    .args(["--configurations", "base", "--vocab"])
    .arg(&vocab);
    let odd = Run::of(&mut odd);
    assert_eq!(odd.code(), Some(2), "{}", odd.stderr());
    assert!(odd.stderr().contains("multiple of 4"), "{}", odd.stderr());
}

#[test]
fn sharded_parts_resume_into_the_same_bytes() {
    let Some((dir, vocab)) = setup() else { return };
    let base = [
        "--configurations",
        "base",
        "--seeds",
        "42,371",
        "--images-per-part",
        "1",
    ];
    let mut shard = base.to_vec();
    shard.extend(["--shard", "0/2"]);
    let first = sample(&dir, &vocab, &shard).success();
    assert!(
        first.stdout().contains("shard 0/2 done"),
        "{}",
        first.stdout()
    );
    let rest = sample(&dir, &vocab, &base).success();
    assert!(
        rest.stdout().contains("2 parts computed, 2 resumed"),
        "{}",
        rest.stdout()
    );
    let resumed: Vec<Vec<u8>> = part_files(&dir.path().join("out"))
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(resumed.len(), 4);

    // A forced run recomputes every part in one go: the same bytes.
    let forced: Vec<&str> = base.iter().copied().chain(["--force"]).collect();
    sample(&dir, &vocab, &forced).success();
    let whole: Vec<Vec<u8>> = part_files(&dir.path().join("out"))
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert!(
        resumed == whole,
        "resumed parts differ from an uninterrupted run"
    );
}

#[test]
fn device_flag_runs_on_the_cpu_and_refuses_what_the_build_cannot_do() {
    let Some((dir, vocab)) = setup() else { return };
    let on = |device: &str| {
        let mut cmd = dir.anchor();
        cmd.args(["--device", device]);
        cmd.args(["--out", "out", "sample", "--base", "model"])
            .args(["--resolution", "16", "--steps", "2", "--max-captions", "1"])
            .args(["--configurations", "base", "--seeds", "7", "--vocab"])
            .arg(&vocab);
        Run::of(&mut cmd)
    };
    let bad = on("tpu");
    assert_eq!(bad.code(), Some(2), "{}", bad.stderr());
    assert!(bad.stderr().contains("cuda:N"), "{}", bad.stderr());
    if !cfg!(feature = "cuda") {
        let cuda = on("cuda:1");
        assert_eq!(cuda.code(), Some(2), "{}", cuda.stderr());
        assert!(
            cuda.stderr().contains("`cuda` feature"),
            "{}",
            cuda.stderr()
        );
        assert!(!dir.path().join("out/generations").exists());
    }
    let cpu = on("cpu").success();
    assert!(cpu.stdout().contains("sample: done"), "{}", cpu.stdout());
    // The device is not a parameter: the same run on another device is up to date.
    let again = on("auto").success();
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
}
