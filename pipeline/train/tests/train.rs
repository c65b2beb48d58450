//! The training stages on synthetic data: the demo base learns (VAE reconstruction and UNet
//! loss fall), only LoRA variables train, and a LoRA run stopped mid-way resumes from its
//! checkpoint to exactly the log and file bytes of an uninterrupted run.

use std::path::{Path, PathBuf};

use anchor_sd::{LoraConfig, StableDiffusion};
use anchor_train::data::{Example, Subject};
use anchor_train::layout::Layout;
use anchor_train::settings::TrainedLora;
use anchor_train::stages::StageRunner;
use anchor_train::trainer::Schedule;
use anchor_train::{DemoSettings, Precision, SubjectWeighting, TrainSettings, ValidationSettings};
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
        configurations: vec![TrainedLora::Lora, TrainedLora::Safe],
        base,
        resolution: 16,
        lora: LoraConfig {
            rank: 4,
            alpha: 4.0,
        },
        schedule: Schedule {
            steps: 8,
            batch_size: 2,
            grad_accum: 2,
            lr: 1e-3,
            warmup: 2,
            max_grad_norm: 1.0,
        },
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
        precision: Precision::F32,
        full_finetune: false,
        validation: ValidationSettings::default(),
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
    let a = StageRunner::new(
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
    let b = StageRunner::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: tmp.path().join("b"),
        },
        "fx".into(),
        dev.clone(),
    );
    let full = b.finetune(TrainedLora::Safe, &data, &mut noop, None)?;
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
    let c = StageRunner::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: root_c.clone(),
        },
        "fx".into(),
        dev.clone(),
    );
    let partial = c.finetune(TrainedLora::Safe, &data, &mut noop, Some(5))?;
    assert_eq!(partial.log.len(), 5);
    assert!(
        !root_c
            .join("models/lora/safe/pytorch_lora_weights.safetensors")
            .exists()
    );
    let c2 = StageRunner::new(
        settings(Some(base_dir.clone())),
        Layout {
            root: root_c.clone(),
        },
        "fx".into(),
        dev.clone(),
    );
    let resumed = c2.finetune(TrainedLora::Safe, &data, &mut noop, None)?;
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
    let plain = b.finetune(TrainedLora::Lora, &data, &mut noop, None)?;
    assert_ne!(plain.log, full.log);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("b/models/manifest.json"))?)?;
    assert!(
        manifest["loras"]["lora"]["path"].is_string()
            && manifest["loras"]["safe"]["path"].is_string()
    );

    validation_images(&base_dir, &data, &lora_file, tmp.path())?;
    mixed_precision(&base_dir, &data, &full.log, &lora_file, tmp.path())?;
    full_finetune(&base_dir, &data, &full.log, tmp.path())?;
    Ok(())
}

/// Validation images: written at every `every` steps and after the last, decodable, one per
/// prompt; sampling them leaves the trained weights exactly as without them; a run stopped
/// and resumed writes the same bytes; a fresh run clears an earlier run's images.
fn validation_images(
    base_dir: &Path,
    data: &anchor_train::stages::Prepared,
    lora_file: &Path,
    tmp: &Path,
) -> TestResult {
    let dev = Device::Cpu;
    let mut noop = |_: &str, _: &anchor_train::trainer::LogRow| {};
    let mut s = settings(Some(base_dir.to_path_buf()));
    s.validation = ValidationSettings {
        prompts: vec![
            "Angela Merkel in Brussels".into(),
            "Rain over London".into(),
        ],
        every: 3,
    };
    let images = |root: &Path| -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
        let dir = Layout {
            root: root.to_path_buf(),
        }
        .validation_dir(TrainedLora::Safe, false);
        let mut out = Vec::new();
        for step in std::fs::read_dir(&dir)? {
            let step = step?.path();
            for file in std::fs::read_dir(&step)? {
                let file = file?.path();
                let name = file
                    .strip_prefix(&dir)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                out.push((name, std::fs::read(&file)?));
            }
        }
        out.sort();
        Ok(out)
    };

    let root = tmp.join("validation");
    let stale = Layout { root: root.clone() }
        .validation_dir(TrainedLora::Safe, false)
        .join("step-00000099");
    std::fs::create_dir_all(&stale)?;
    std::fs::write(stale.join("00.png"), b"old")?;
    let trainer = || {
        StageRunner::new(
            s.clone(),
            Layout { root: root.clone() },
            "fx".into(),
            dev.clone(),
        )
    };
    trainer().finetune(TrainedLora::Safe, data, &mut noop, None)?;
    let written = images(&root)?;
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "step-00000003/00.png",
            "step-00000003/01.png",
            "step-00000006/00.png",
            "step-00000006/01.png",
            "step-00000008/00.png",
            "step-00000008/01.png",
        ]
    );
    for (name, bytes) in &written {
        let decoded = image::load_from_memory(bytes)?;
        assert_eq!((decoded.width(), decoded.height()), (16, 16), "{name}");
    }
    assert_ne!(written[0].1, written[1].1, "two prompts, one image");
    assert_ne!(
        written[0].1, written[4].1,
        "step 3 and step 8 sampled alike"
    );
    assert_eq!(
        std::fs::read(Layout { root: root.clone() }.lora_file(TrainedLora::Safe))?,
        std::fs::read(lora_file)?,
        "sampling validation images changed the training"
    );

    // Stopped after step 5 (checkpoint at 3), then resumed: the same images.
    let resumed_root = tmp.join("validation-resumed");
    let resumed = || {
        StageRunner::new(
            s.clone(),
            Layout {
                root: resumed_root.clone(),
            },
            "fx".into(),
            dev.clone(),
        )
    };
    resumed().finetune(TrainedLora::Safe, data, &mut noop, Some(5))?;
    resumed().finetune(TrainedLora::Safe, data, &mut noop, None)?;
    assert_eq!(images(&resumed_root)?, written);
    Ok(())
}

/// `full_finetune`: every UNet weight trains from the base's values (so step 1 equals the
/// LoRA run's, whose fresh adapters are a no-op), the output is a whole UNet folder with the
/// base's keys and config, the base file is untouched, and f16 is refused.
fn full_finetune(
    base_dir: &Path,
    data: &anchor_train::stages::Prepared,
    lora_log: &[anchor_train::trainer::LogRow],
    tmp: &Path,
) -> TestResult {
    let dev = Device::Cpu;
    let mut noop = |_: &str, _: &anchor_train::trainer::LogRow| {};
    let base_file = base_dir.join("unet/diffusion_pytorch_model.safetensors");
    let base_bytes = std::fs::read(&base_file)?;
    let mut s = settings(Some(base_dir.to_path_buf()));
    s.full_finetune = true;
    s.schedule.steps = 3;
    let root = tmp.join("full");
    let layout = Layout { root: root.clone() };
    let rec = StageRunner::new(s.clone(), layout.clone(), "fx".into(), dev.clone()).finetune(
        TrainedLora::Safe,
        data,
        &mut noop,
        None,
    )?;
    assert_eq!(rec.facts["kind"], "full");
    let (a, b) = (rec.log[0].loss, lora_log[0].loss);
    assert!((a - b).abs() <= 1e-6 * b, "{a} vs {b}");
    assert_eq!(std::fs::read(&base_file)?, base_bytes, "the base changed");
    let file = layout.full_unet_file(TrainedLora::Safe);
    let trained = candle_core::safetensors::load(&file, &dev)?;
    let base = candle_core::safetensors::load(&base_file, &dev)?;
    let mut keys: Vec<&String> = trained.keys().collect();
    let mut base_keys: Vec<&String> = base.keys().collect();
    keys.sort();
    base_keys.sort();
    assert_eq!(keys, base_keys);
    let changed = trained
        .iter()
        .filter(|(k, t)| {
            let diff = (*t - &base[*k]).and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>());
            matches!(diff, Ok(d) if d > 0.0)
        })
        .count();
    assert!(
        changed > keys.len() / 2,
        "only {changed} of {} tensors moved",
        keys.len()
    );
    assert_eq!(
        std::fs::read(file.with_file_name("config.json"))?,
        std::fs::read(base_dir.join("unet/config.json"))?
    );
    assert!(!anchor_sd::lora::is_lora_file(&file)?);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.manifest())?)?;
    assert_eq!(manifest["loras"]["safe"]["kind"], "full");

    s.precision = Precision::F16;
    let err = StageRunner::new(
        s,
        Layout {
            root: tmp.join("full16"),
        },
        "fx".into(),
        dev,
    )
    .finetune(TrainedLora::Safe, data, &mut noop, None)
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("full fine-tuning trains every weight in f32"),
        "{err}"
    );
    Ok(())
}

/// f16 LoRA training on the same base (bf16 needs CUDA): the curve tracks f32's, the adapters stay
/// f32 with the same keys, f16's loss scaler is exercised and survives a resume exactly, and
/// an fp16 base file is converted on load.
fn mixed_precision(
    base_dir: &Path,
    data: &anchor_train::stages::Prepared,
    f32_log: &[anchor_train::trainer::LogRow],
    f32_lora: &Path,
    tmp: &Path,
) -> TestResult {
    let dev = Device::Cpu;
    let mut noop = |_: &str, _: &anchor_train::trainer::LogRow| {};
    let f32_keys: Vec<String> = {
        let mut k: Vec<String> = candle_core::safetensors::load(f32_lora, &dev)?
            .into_keys()
            .collect();
        k.sort();
        k
    };
    let trainer = |root: &str, precision: Precision| {
        let mut s = settings(Some(base_dir.to_path_buf()));
        s.precision = precision;
        StageRunner::new(
            s,
            Layout {
                root: tmp.join(root),
            },
            "fx".into(),
            dev.clone(),
        )
    };
    // candle's CPU matmul has no bf16 kernel: refused up front, by name.
    let err = trainer("bf16", Precision::Bf16)
        .finetune(TrainedLora::Safe, data, &mut noop, None)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bf16 needs a CUDA device"), "{err}");
    {
        let (root, precision) = ("f16", Precision::F16);
        let rec = trainer(root, precision).finetune(TrainedLora::Safe, data, &mut noop, None)?;
        assert_eq!(rec.log.len(), f32_log.len());
        // Same noise, same init: the first step's loss differs only by the forward's rounding.
        let (a, b) = (rec.log[0].loss, f32_log[0].loss);
        eprintln!(
            "{} step-1 loss {a:.6} vs f32 {b:.6}; facts {}",
            precision.name(),
            rec.facts
        );
        assert!(a.is_finite() && (a - b).abs() < 0.05 * b, "{a} vs {b}");
        assert_ne!(rec.log, f32_log, "{} computed in f32", precision.name());
        assert_eq!(rec.facts["precision"], precision.name());
        let file = tmp
            .join(root)
            .join("models/lora/safe/pytorch_lora_weights.safetensors");
        let lora = candle_core::safetensors::load(&file, &dev)?;
        let mut keys: Vec<String> = lora.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, f32_keys);
        assert!(lora.values().all(|t| t.dtype() == DType::F32));
        let moved = lora
            .iter()
            .filter(|(k, _)| k.ends_with("lora_B.weight"))
            .map(|(_, t)| t.abs()?.max_all()?.to_scalar::<f32>())
            .collect::<candle_core::Result<Vec<f32>>>()?;
        assert!(
            moved.iter().all(|&m| m > 0.0),
            "an f32 master weight never moved"
        );
    }
    // f16 stopped at step 5 and resumed from the step-3 checkpoint (scaler state included)
    // equals the uninterrupted f16 run.
    let full = trainer("f16", Precision::F16).finetune(TrainedLora::Safe, data, &mut noop, None)?;
    assert_eq!(full.steps_run, 0, "the finished f16 run was not reused");
    let partial =
        trainer("f16r", Precision::F16).finetune(TrainedLora::Safe, data, &mut noop, Some(5))?;
    assert_eq!(partial.log.len(), 5);
    let resumed =
        trainer("f16r", Precision::F16).finetune(TrainedLora::Safe, data, &mut noop, None)?;
    assert_eq!(resumed.steps_run, 5);
    assert_eq!(resumed.log, full.log);
    assert_eq!(resumed.facts["skipped_steps"], full.facts["skipped_steps"]);
    let lora = |root: &str| {
        std::fs::read(
            tmp.join(root)
                .join("models/lora/safe/pytorch_lora_weights.safetensors"),
        )
    };
    assert_eq!(lora("f16r")?, lora("f16")?);

    // An fp16 copy of the base trains in f32 (converted on load) to the f32 run's first loss,
    // up to the rounding of the weights.
    let half = tmp.join("base-fp16");
    copy_dir(base_dir, &half)?;
    let unet = half.join("unet/diffusion_pytorch_model.safetensors");
    let tensors: std::collections::HashMap<String, Tensor> =
        candle_core::safetensors::load(&unet, &dev)?
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F16)?)))
            .collect::<candle_core::Result<_>>()?;
    candle_core::safetensors::save(&tensors, &unet)?;
    let mut s = settings(Some(half));
    s.schedule.steps = 2;
    let rec = StageRunner::new(
        s,
        Layout {
            root: tmp.join("from-fp16"),
        },
        "fx".into(),
        dev.clone(),
    )
    .finetune(TrainedLora::Safe, data, &mut noop, None)?;
    let (a, b) = (rec.log[0].loss, f32_log[0].loss);
    assert!((a - b).abs() < 0.02 * b, "{a} vs {b}");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
