//! `anchor train` on synthetic input tables (the demo base, then `lora` and `safe`): a
//! real `kill -9` mid-training and resume equals an uninterrupted run (train_log, LoRA and
//! validation image bytes), a second run is up to date, and `--plot` writes the loss curves.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Run, TestDir};

/// Tiny but complete: 16 px images (4x4 latents), a few steps of every stage.
const SMALL: &[&str] = &[
    "--set",
    "train.resolution=16",
    "--set",
    "train.steps=12",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.warmup=2",
    "--set",
    "train.checkpoint_every=3",
    "--set",
    "train.demo_vae_steps=6",
    "--set",
    "train.demo_unet_steps=6",
    "--set",
    "train.demo_batch_size=2",
    "--set",
    "train.validation_every=6",
    "--set",
    "train.validation_prompts=[\"Rain over London\"]",
];

fn models_flag(dir: &TestDir) -> Vec<String> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models");
    let _ = dir;
    vec!["--set".into(), format!("paths.models={}", models.display())]
}

fn vocab_present() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")
        .is_file()
}

fn outputs(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(out.join("train_log")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".parquet") {
            files.push((
                format!("train_log/{name}"),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    for c in ["lora", "safe"] {
        let p = out.join(format!(
            "train/models/lora/{c}/pytorch_lora_weights.safetensors"
        ));
        files.push((c.to_string(), std::fs::read(&p).unwrap()));
        // Validation images after steps 6 and 12, written before those checkpoints.
        for step in [6, 12] {
            let name = format!("train/models/lora/{c}/validation/step-{step:08}/00.png");
            let bytes = std::fs::read(out.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            files.push((name, bytes));
        }
    }
    files.sort();
    files
}

fn has_checkpoint(out: &Path, stage: &str) -> bool {
    std::fs::read_dir(out.join(format!("train/work/{stage}/checkpoints")))
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
        })
        .unwrap_or(false)
}

#[test]
fn train_resumes_exactly_after_kill_9() {
    if !vocab_present() {
        eprintln!(
            "skipping: data/models/open-clip/bpe_simple_vocab_16e6.txt.gz is missing (make models)"
        );
        return;
    }
    let dir = TestDir::new();
    for out in ["reference", "killed"] {
        anchor_train::fixture::write_tables(&dir.path().join(out), 30, 7).unwrap();
    }
    let models = models_flag(&dir);
    let reference = Run::of(dir.anchor().args(SMALL).args(&models).args([
        "--out",
        "reference",
        "train",
        "--plot",
    ]))
    .success();
    let text = reference.stdout();
    assert!(text.contains("train: done"), "{text}");
    assert!(text.contains("reconstruction MSE"), "{text}");
    let root = dir.path().join("reference/train");
    assert!(root.join("loss.png").is_file());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("models/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["resolution"], 16);
    assert!(
        manifest["loras"]["lora"]["sha256"].is_string(),
        "{manifest}"
    );
    assert!(
        manifest["loras"]["safe"]["sha256"].is_string(),
        "{manifest}"
    );
    for f in [
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "tokenizer/vocab.json",
        "scheduler/scheduler_config.json",
    ] {
        assert!(root.join("models/base").join(f).is_file(), "{f} missing");
    }

    let again =
        Run::of(
            dir.anchor()
                .args(SMALL)
                .args(&models)
                .args(["--out", "reference", "train"]),
        )
        .success();
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());

    // Kill -9 as soon as the `safe` (or `lora`) LoRA has a checkpoint, then resume.
    let killed = dir.path().join("killed");
    let mut child = dir
        .anchor()
        .args(SMALL)
        .args(&models)
        .args(["--quiet", "--out", "killed", "train"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut killed_mid_training = false;
    while started.elapsed() < Duration::from_secs(600) {
        if has_checkpoint(&killed, "lora") || has_checkpoint(&killed, "safe") {
            child.kill().unwrap();
            killed_mid_training = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
    assert!(
        killed_mid_training,
        "the run finished before a LoRA checkpoint was seen; nothing was interrupted"
    );
    let committed = crate::kill::committed_parts(&killed, "train");
    let status = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(&models)
            .args(["--out", "killed", "status"]),
    )
    .success()
    .stdout();
    let (said, total) = crate::kill::status_partial(&status, "train");
    assert_eq!(said, committed, "{status}");
    assert!(committed < total, "{status}");
    // `-v` logs the checkpoint a LoRA part resumes from.
    let resumed = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(&models)
            .args(["-v", "--out", "killed", "train"]),
    )
    .success();
    crate::kill::assert_done(&resumed.stdout(), "train", total - committed, committed);
    assert!(
        resumed.stderr().contains("resuming from checkpoint"),
        "{}",
        resumed.stderr()
    );
    assert_eq!(outputs(&dir.path().join("reference")), outputs(&killed));
}

#[test]
fn train_rejects_unknown_configurations() {
    let dir = TestDir::new();
    let run = Run::of(dir.anchor().args(["train", "--configurations", "prefix"]));
    assert_ne!(run.code(), Some(0));
    assert!(run.stderr().contains("does not train"), "{}", run.stderr());
}

#[test]
fn train_refuses_bf16_on_the_cpu_and_unknown_precisions() {
    let dir = TestDir::new();
    let run = Run::of(dir.anchor().args(["train", "--precision", "bf16"]));
    assert_ne!(run.code(), Some(0));
    assert!(
        run.stderr().contains("bf16 needs a CUDA device"),
        "{}",
        run.stderr()
    );
    let run = Run::of(
        dir.anchor()
            .args(["--set", "train.precision=\"int8\"", "train"]),
    );
    assert_ne!(run.code(), Some(0));
    assert!(
        run.stderr().contains("\"int8\" is not one of"),
        "{}",
        run.stderr()
    );
}

/// The logs of the finished stages (`train/work/<stage>/done.json`), by stage.
fn stage_logs(out: &Path) -> Vec<(String, Vec<anchor_train::trainer::LogRow>)> {
    ["vae", "unet", "lora", "safe"]
        .iter()
        .map(|stage| {
            let path = out.join(format!("train/work/{stage}/done.json"));
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let log = serde_json::from_value(record["log"].clone()).unwrap();
            (stage.to_string(), log)
        })
        .collect()
}

fn lora_values(out: &Path, configuration: &str) -> Vec<(String, Vec<f32>)> {
    let path = out.join(format!(
        "train/models/lora/{configuration}/pytorch_lora_weights.safetensors"
    ));
    anchor_train::st::read(&path, &candle_core::Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

/// `anchor train` launched as two processes with torchrun's variables (each with batch 2)
/// trains what one process with batch 4 trains; rank 1 writes nothing of its own; a second
/// launch is up to date on both ranks.
#[test]
fn two_processes_train_as_one_with_twice_the_batch() {
    if !vocab_present() {
        eprintln!(
            "skipping: data/models/open-clip/bpe_simple_vocab_16e6.txt.gz is missing (make models)"
        );
        return;
    }
    let dir = TestDir::new();
    for out in ["single", "pair"] {
        anchor_train::fixture::write_tables(&dir.path().join(out), 30, 7).unwrap();
    }
    let models = models_flag(&dir);
    let double = [
        "--set",
        "train.batch_size=4",
        "--set",
        "train.demo_batch_size=4",
    ];
    Run::of(
        dir.anchor()
            .args(SMALL)
            .args(double)
            .args(&models)
            .args(["--out", "single", "train"]),
    )
    .success();

    let launch = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                dir.anchor()
                    .args(SMALL)
                    .args(&models)
                    .args(["--out", "pair", "train"])
                    .env("WORLD_SIZE", "2")
                    .env("RANK", rank.to_string())
                    .env("LOCAL_RANK", rank.to_string())
                    .env("MASTER_ADDR", "127.0.0.1")
                    .env("MASTER_PORT", port.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        ranks
            .into_iter()
            .map(|child| {
                Run {
                    output: child.wait_with_output().unwrap(),
                }
                .success()
                .stdout()
            })
            .collect::<Vec<_>>()
    };
    let said = launch();
    assert!(said[0].contains("train: done"), "{}", said[0]);
    assert!(
        said[1].contains("trained 4 parts with rank 0"),
        "{}",
        said[1]
    );

    let (single, pair) = (dir.path().join("single"), dir.path().join("pair"));
    assert_trained_alike(&single, &pair, "two ranks x batch 2");
    // Only rank 0's files: one train_log part per stage, and no stray temporaries.
    let logs = std::fs::read_dir(pair.join("train_log")).unwrap().count();
    assert_eq!(
        logs,
        std::fs::read_dir(single.join("train_log")).unwrap().count()
    );

    let again = launch();
    assert!(again[0].contains("up to date"), "{}", again[0]);
    assert!(
        again[1].contains("trained 0 parts with rank 0"),
        "{}",
        again[1]
    );

    // Started by torchrun, whose agent holds MASTER_PORT: the ranks meet through its store.
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping the torchrun launch: ANCHOR_PYTHON not set (a Python with torch)");
        return;
    };
    anchor_train::fixture::write_tables(&dir.path().join("torchrun"), 30, 7).unwrap();
    let anchor = dir.anchor();
    let mut torchrun = std::process::Command::new(python);
    if let Some(cwd) = anchor.get_current_dir() {
        torchrun.current_dir(cwd);
    }
    for (key, value) in anchor.get_envs() {
        match value {
            Some(value) => torchrun.env(key, value),
            None => torchrun.env_remove(key),
        };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let said = Run::of(
        torchrun
            .args(["-m", "torch.distributed.run", "--nproc-per-node", "2"])
            .args(["--master-addr", "127.0.0.1", "--master-port", &port])
            .args(["--no-python", env!("CARGO_BIN_EXE_anchor")])
            .args(SMALL)
            .args(&models)
            .args(["--out", "torchrun", "train"]),
    )
    .success()
    .stdout();
    assert!(said.contains("train: done"), "{said}");
    assert!(said.contains("trained 4 parts with rank 0"), "{said}");
    assert_trained_alike(
        &single,
        &dir.path().join("torchrun"),
        "torchrun, 2 x batch 2",
    );
}

/// The loss curves and LoRA weights of `parallel` equal those of `single` (one process with
/// the whole batch) to 1e-4.
fn assert_trained_alike(single: &Path, parallel: &Path, what: &str) {
    let mut largest = 0f64;
    for ((stage, one), (_, two)) in stage_logs(single).iter().zip(stage_logs(parallel)) {
        assert_eq!(one.len(), two.len(), "{stage}");
        assert!(!one.is_empty(), "{stage}");
        for (a, b) in one.iter().zip(&two) {
            assert_eq!((a.step, a.epoch), (b.step, b.epoch), "{stage}");
            let rel = (a.loss - b.loss).abs() / a.loss.abs().max(1e-12);
            largest = largest.max(rel);
            assert!(
                rel < 1e-4,
                "{stage} step {}: loss {} vs {}",
                a.step,
                a.loss,
                b.loss
            );
        }
    }
    let mut weights = 0f32;
    for c in ["lora", "safe"] {
        for ((name, a), (_, b)) in lora_values(single, c).iter().zip(lora_values(parallel, c)) {
            for (x, y) in a.iter().zip(&b) {
                weights = weights.max((x - y).abs());
            }
            assert_eq!(a.len(), b.len(), "{c} {name}");
        }
    }
    eprintln!(
        "{what} vs one process x batch 4: largest relative loss difference \
         {largest:.2e}, largest LoRA weight difference {weights:.2e}"
    );
    assert!(weights < 1e-4, "LoRA weights differ by {weights}");
}

/// A chain is one process's work: a data-parallel launch of `anchor run` is refused.
#[test]
fn a_data_parallel_launch_runs_train_alone() {
    let dir = TestDir::new();
    let run = Run::of(
        dir.anchor()
            .args(["run", "train"])
            .env("WORLD_SIZE", "2")
            .env("RANK", "0"),
    );
    assert_ne!(run.code(), Some(0));
    assert!(
        run.stderr().contains("runs `anchor train` alone"),
        "{}",
        run.stderr()
    );
}
