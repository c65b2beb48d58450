//! The training stages on synthetic data: the demo base learns (VAE reconstruction and UNet
//! loss fall), only LoRA variables train, and a LoRA run stopped mid-way resumes from its
//! checkpoint to exactly the log and file bytes of an uninterrupted run.

use std::path::{Path, PathBuf};

use anchor_safe::{LoraConfig, StableDiffusion};
use anchor_train::data::{Example, Subject};
use anchor_train::stages::{Configuration, Layout, Trainer};
use anchor_train::{DemoSettings, SubjectWeighting, TrainSettings};
use candle_core::{DType, Device, Tensor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn vocab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")
}

fn examples() -> Result<Vec<Example>, anchor_train::Error> {
    Ok(anchor_train::fixture::rows(24, 3)?
        .into_iter()
        .filter(|r| r.split == "train")
        .map(|r| Example {
            id: r.id,
            caption: r.caption,
            image: r.png,
            subjects: r
                .subjects
                .iter()
                .map(|(_, s, e, w)| Subject {
                    start: *s as usize,
                    end: *e as usize,
                    weight: *w as f32,
                })
                .collect(),
        })
        .collect())
}

fn settings(base: Option<PathBuf>) -> TrainSettings {
    TrainSettings {
        configurations: vec![Configuration::Lora, Configuration::Safe],
        base,
        resolution: 16,
        lora: LoraConfig {
            rank: 4,
            alpha: 4.0,
        },
        steps: 8,
        batch_size: 2,
        grad_accum: 2,
        lr: 1e-3,
        warmup: 2,
        max_grad_norm: 1.0,
        min_snr_gamma: Some(5.0),
        seed: 11,
        checkpoint_every: 3,
        weighting: SubjectWeighting::Fixed(1.21),
        demo: DemoSettings {
            vae_steps: 60,
            vae_lr: 1e-2,
            vae_kl_weight: 1e-3,
            unet_steps: 40,
            unet_lr: 1e-3,
            batch_size: 4,
        },
        vocab: vocab(),
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn demo_base_learns_lora_trains_only_adapters_and_resume_is_exact() -> TestResult {
    if !vocab().is_file() {
        eprintln!("skipping: {} missing (make models)", vocab().display());
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let dev = Device::Cpu;
    let mut noop = |_: &str, _: &anchor_train::trainer::LogRow| {};

    // The demo base.
    let a = Trainer::new(
        settings(None),
        Layout {
            root: tmp.path().join("a"),
        },
        "fx".into(),
        dev.clone(),
    );
    let data = a.prepare(examples()?)?;
    let base = a.ensure_base(&data, &mut noop)?;
    let vae: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("a/work/vae/done.json"))?)?;
    let (init, trained) = (
        vae["facts"]["reconstruction_mse_init"]
            .as_f64()
            .unwrap_or(f64::NAN),
        vae["facts"]["reconstruction_mse_trained"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    eprintln!("VAE reconstruction MSE: init {init:.4}, trained {trained:.4}");
    assert!(
        trained < 0.85 * init,
        "VAE did not learn: {init} -> {trained}"
    );
    let losses: Vec<f64> = base.log.iter().map(|r| r.loss).collect();
    let (first, last) = (mean(&losses[..8]), mean(&losses[losses.len() - 8..]));
    eprintln!("UNet loss: first 8 steps {first:.4}, last 8 {last:.4}");
    assert!(last < first, "UNet loss did not fall: {first} -> {last}");
    let base_dir = tmp.path().join("a/models/base");
    // Idempotent: a second call finds the record and trains nothing.
    let again = a.ensure_base(&data, &mut noop)?;
    assert_eq!(again.steps_run, 0);
    assert_eq!(again.log, base.log);

    // LoRA on the frozen base: uninterrupted reference.
    let base_file = base_dir.join("unet/diffusion_pytorch_model.safetensors");
    let base_bytes = std::fs::read(&base_file)?;
    let b = Trainer::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: tmp.path().join("b"),
        },
        "fx".into(),
        dev.clone(),
    );
    let full = b.finetune(Configuration::Safe, &data, &mut noop, None)?;
    assert_eq!(full.log.len(), 8);
    assert_eq!(
        std::fs::read(&base_file)?,
        base_bytes,
        "the frozen base changed"
    );
    let lora_file = tmp
        .path()
        .join("b/models/lora/safe/pytorch_lora_weights.safetensors");
    let lora = candle_core::safetensors::load(&lora_file, &dev)?;
    assert!(!lora.is_empty());
    for (k, t) in &lora {
        assert!(
            k.starts_with("unet.")
                && (k.ends_with("lora_A.weight") || k.ends_with("lora_B.weight")),
            "{k}"
        );
        if k.ends_with("lora_B.weight") {
            let moved = t.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(moved > 0.0, "{k} never trained");
        }
    }
    // The LoRA loads through the sampler's loader and changes the UNet.
    let with = StableDiffusion::from_diffusers_dir(&base_dir, Some(&lora_file), DType::F32, &dev)?;
    let without = StableDiffusion::from_diffusers_dir(&base_dir, None, DType::F32, &dev)?;
    let x = Tensor::ones((1, 4, 4, 4), DType::F32, &dev)?;
    let t = Tensor::new(&[500f32], &dev)?;
    let ctx = without.text.empty().clone();
    let diff = (with.unet.forward(&x, &t, &ctx)? - without.unet.forward(&x, &t, &ctx)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(diff > 0.0);

    // Stopped after step 5 (last checkpoint at 3), then resumed by a fresh trainer.
    let root_c = tmp.path().join("c");
    let c = Trainer::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: root_c.clone(),
        },
        "fx".into(),
        dev.clone(),
    );
    let partial = c.finetune(Configuration::Safe, &data, &mut noop, Some(5))?;
    assert_eq!(partial.log.len(), 5);
    assert!(
        !root_c
            .join("models/lora/safe/pytorch_lora_weights.safetensors")
            .exists()
    );
    let c2 = Trainer::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: root_c.clone(),
        },
        "fx".into(),
        dev.clone(),
    );
    let resumed = c2.finetune(Configuration::Safe, &data, &mut noop, None)?;
    assert_eq!(
        resumed.steps_run, 5,
        "expected to resume from the step-3 checkpoint"
    );
    assert_eq!(resumed.log, full.log);
    assert_eq!(
        std::fs::read(root_c.join("models/lora/safe/pytorch_lora_weights.safetensors"))?,
        std::fs::read(&lora_file)?
    );
    // Plain captions and weighted ones give different embeddings, hence different curves.
    let plain = b.finetune(Configuration::Lora, &data, &mut noop, None)?;
    assert_ne!(plain.log, full.log);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("b/models/manifest.json"))?)?;
    assert!(
        manifest["loras"]["lora"]["path"].is_string()
            && manifest["loras"]["safe"]["path"].is_string()
    );
    Ok(())
}
