//! Parity with diffusers, transformers and compel on tiny random models.
//!
//! `tests/python/make_reference.py` builds the reference models with fixed seeds, saves
//! them in the diffusers layout (`unet/`, `unet_sd2/`, `vae/`, `text_encoder/`) and writes
//! inputs and outputs to `reference.safetensors`; these tests load the same weights through
//! our modules and compare. They need `ANCHOR_PYTHON` (a python with torch, diffusers,
//! transformers, compel, safetensors; see requirements/safe.txt) and skip without it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anchor_sd::{
    AutoencoderKL, ClipTextModel, DdimScheduler, EulerDiscreteScheduler, NoiseSchedule, Prediction,
    Sampler, UNet2DConditionModel, weighted_embeddings,
};
use candle_core::{DType, Device, Tensor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOL: f32 = 1e-4;

struct Reference {
    dir: PathBuf,
    tensors: HashMap<String, Tensor>,
}

/// Runs the Python script once per test binary; `None` when ANCHOR_PYTHON is unset.
fn reference() -> Option<&'static Reference> {
    static REF: OnceLock<Option<Reference>> = OnceLock::new();
    REF.get_or_init(|| {
        let python = std::env::var_os("ANCHOR_PYTHON")?;
        let dir = std::env::temp_dir().join(format!("anchor-sd-parity-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_reference.py");
        let status = Command::new(python)
            .arg(&script)
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(status.success(), "{} failed: {status}", script.display());
        let tensors =
            candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)
                .unwrap_or_else(|e| panic!("loading reference.safetensors: {e}"));
        Some(Reference { dir, tensors })
    })
    .as_ref()
}

macro_rules! reference_or_skip {
    () => {
        match reference() {
            Some(r) => r,
            None => {
                eprintln!("skipping: ANCHOR_PYTHON not set");
                return Ok(());
            }
        }
    };
}

impl Reference {
    fn get(&self, key: &str) -> Result<Tensor, String> {
        self.tensors
            .get(key)
            .cloned()
            .ok_or_else(|| format!("reference.safetensors lacks {key}"))
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32, Box<dyn std::error::Error>> {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    Ok((a.to_dtype(DType::F32)? - b.to_dtype(DType::F32)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?)
}

fn check(what: &str, ours: &Tensor, theirs: &Tensor) -> TestResult {
    let d = max_abs_diff(ours, theirs)?;
    eprintln!("{what}: max |diff| = {d:.3e}");
    assert!(d < TOL, "{what}: max abs diff {d} exceeds {TOL}");
    Ok(())
}

fn unet_parity(name: &str) -> TestResult {
    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let unet = UNet2DConditionModel::from_diffusers_dir(&r.dir.join(name), DType::F32, &dev)?;
    let out = unet.forward(
        &r.get(&format!("{name}.sample"))?,
        &r.get(&format!("{name}.timesteps"))?,
        &r.get(&format!("{name}.context"))?,
    )?;
    check(name, &out, &r.get(&format!("{name}.out"))?)
}

#[test]
fn unet_sd1_layout_matches_diffusers() -> TestResult {
    unet_parity("unet")
}

#[test]
fn unet_sd2_linear_projection_matches_diffusers() -> TestResult {
    unet_parity("unet_sd2")
}

#[test]
fn vae_encode_and_decode_match_diffusers() -> TestResult {
    let r = reference_or_skip!();
    let vae = AutoencoderKL::from_diffusers_dir(&r.dir.join("vae"), DType::F32, &Device::Cpu)?;
    let dist = vae.encode(&r.get("vae.image")?)?;
    check("vae mean", &dist.mean, &r.get("vae.mean")?)?;
    check("vae logvar", &dist.logvar, &r.get("vae.logvar")?)?;
    let decoded = vae.decode(&r.get("vae.latents")?)?;
    check("vae decode", &decoded, &r.get("vae.decoded")?)
}

#[test]
fn text_encoder_matches_transformers() -> TestResult {
    let r = reference_or_skip!();
    let clip = ClipTextModel::from_dir(&r.dir.join("text_encoder"), DType::F32, &Device::Cpu)?;
    let ids = r.get("clip.ids")?.to_dtype(DType::U32)?;
    check("clip", &clip.forward(&ids)?, &r.get("clip.out")?)
}

#[test]
fn weighted_embeddings_match_compel() -> TestResult {
    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let clip = ClipTextModel::from_dir(&r.dir.join("text_encoder"), DType::F32, &dev)?;
    let special = anchor_sd::SpecialTokens {
        bos: 998,
        eos: 999,
        pad: 999,
    };
    let cond = anchor_sd::TextConditioner::new(clip.clone(), special)?;
    let ids = r.get("compel.ids")?.to_dtype(DType::U32)?;
    let weights = r.get("compel.weights")?;
    let full = clip.forward(&ids)?;
    let ours = weighted_embeddings(&full, cond.empty(), &weights)?;
    check("compel weighting", &ours, &r.get("compel.out")?)?;
    // Same through the conditioner's own batching.
    let prompt = anchor_sd::FittedPrompt {
        ids: ids.squeeze(0)?.to_vec1::<u32>()?,
        weights: weights.squeeze(0)?.to_vec1::<f32>()?,
        truncated: false,
    };
    check(
        "conditioner",
        &cond.encode(&[prompt])?,
        &r.get("compel.out")?,
    )
}

#[test]
fn noise_schedule_matches_ddpm_scheduler() -> TestResult {
    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let s = NoiseSchedule::sd(Prediction::Epsilon);
    let ac = Tensor::new(s.alphas_cumprod.as_slice(), &dev)?;
    check("alphas_cumprod", &ac, &r.get("sched.alphas_cumprod")?)?;
    let (x0, noise) = (r.get("sched.x0")?, r.get("sched.noise")?);
    let t = [10, 500, 999];
    check(
        "add_noise",
        &s.add_noise(&x0, &noise, &t)?,
        &r.get("sched.noisy")?,
    )?;
    check(
        "velocity",
        &s.velocity(&x0, &noise, &t)?,
        &r.get("sched.velocity")?,
    )?;
    let v = NoiseSchedule::sd(Prediction::VPrediction);
    check(
        "v target",
        &v.target(&x0, &noise, &t)?,
        &r.get("sched.velocity")?,
    )
}

#[test]
fn ddim_and_euler_steps_match_diffusers() -> TestResult {
    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let (sample, out) = (r.get("sched.sample")?, r.get("sched.model_out")?);
    for (pred, name) in [
        (Prediction::Epsilon, "epsilon"),
        (Prediction::VPrediction, "v_prediction"),
    ] {
        let ddim = DdimScheduler::new(NoiseSchedule::sd(pred), 10)?;
        let ts: Vec<f32> = ddim.timesteps().iter().map(|&t| t as f32).collect();
        check(
            "ddim timesteps",
            &Tensor::new(ts.as_slice(), &dev)?,
            &r.get("ddim.timesteps")?,
        )?;
        for i in [3, 9] {
            let key = format!("ddim.{name}.step{i}");
            check(&key, &ddim.step(&out, i, &sample)?, &r.get(&key)?)?;
        }

        let euler = EulerDiscreteScheduler::new(&NoiseSchedule::sd(pred), 10)?;
        let ts: Vec<f32> = euler.timesteps().iter().map(|&t| t as f32).collect();
        check(
            "euler timesteps",
            &Tensor::new(ts.as_slice(), &dev)?,
            &r.get("euler.timesteps")?,
        )?;
        check(
            "euler sigmas",
            &Tensor::new(euler.sigmas(), &dev)?,
            &r.get("euler.sigmas")?,
        )?;
        let init = Tensor::new(&[euler.init_noise_sigma() as f32], &dev)?;
        check("euler init sigma", &init, &r.get("euler.init_noise_sigma")?)?;
        check(
            "euler scale",
            &euler.scale_model_input(&sample, 3)?,
            &r.get("euler.scaled3")?,
        )?;
        let key = format!("euler.{name}.step3");
        check(&key, &euler.step(&out, 3, &sample)?, &r.get(&key)?)?;
    }
    Ok(())
}

#[test]
fn saved_lora_loads_in_diffusers_with_the_same_effect() -> TestResult {
    use anchor_sd::lora::{load_lora, save_lora};
    use anchor_sd::{LoraConfig, Weights};
    use candle_nn::{VarBuilder, VarMap};

    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let unet_dir = r.dir.join("unet");
    let base = anchor_sd::weights::load_safetensors(
        &unet_dir.join("diffusion_pytorch_model.safetensors"),
        DType::F32,
        &dev,
    )?;
    let cfg = anchor_sd::UNetConfig::from_diffusers_json(&unet_dir.join("config.json"))?;
    // alpha != rank, so a loader that ignored our metadata would scale the update wrongly.
    let lora_cfg = LoraConfig {
        rank: 2,
        alpha: 4.0,
    };
    let lora_map = VarMap::new();
    let _ = UNet2DConditionModel::new(
        Weights::with_lora(
            base.clone(),
            VarBuilder::from_varmap(&lora_map, DType::F32, &dev).pp("unet"),
            lora_cfg,
        ),
        cfg.clone(),
    )?;
    for (name, var) in lora_map.data().lock().map_err(|_| "poisoned")?.iter() {
        if name.contains("lora_B") {
            var.set(&(Tensor::randn(0f32, 1., var.shape(), &dev)? * 0.1)?)?;
        }
    }
    let lora_dir = r.dir.join("lora");
    std::fs::create_dir_all(&lora_dir)?;
    let path = lora_dir.join("pytorch_lora_weights.safetensors");
    save_lora(&lora_map, lora_cfg, "unet", &path)?;

    let (lora_vb, loaded) = load_lora("unet", &path, DType::F32, &dev)?;
    let unet = UNet2DConditionModel::new(
        Weights::with_lora(base.clone(), lora_vb, loaded),
        cfg.clone(),
    )?;
    let plain = UNet2DConditionModel::new(Weights::new(base), cfg)?;
    let (x, t, ctx) = (
        r.get("unet.sample")?,
        r.get("unet.timesteps")?,
        r.get("unet.context")?,
    );
    let ours = unet.forward(&x, &t, &ctx)?;
    let effect = max_abs_diff(&ours, &plain.forward(&x, &t, &ctx)?)?;
    assert!(effect > 1e-3, "the LoRA has no visible effect ({effect})");

    let python = std::env::var_os("ANCHOR_PYTHON").ok_or("ANCHOR_PYTHON vanished")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/lora_reference.py");
    let status = Command::new(python).arg(&script).arg(&r.dir).status()?;
    assert!(status.success(), "{} failed: {status}", script.display());
    let theirs = candle_core::safetensors::load(r.dir.join("lora_reference.safetensors"), &dev)?;
    let n_lora = theirs.get("n_lora").ok_or("no n_lora")?.to_vec1::<i64>()?[0];
    let ours_n = lora_map.all_vars().len() as i64;
    assert_eq!(
        n_lora, ours_n,
        "diffusers created {n_lora} LoRA params, we saved {ours_n}"
    );
    let scaling = theirs
        .get("scaling")
        .ok_or("no scaling")?
        .to_vec1::<f32>()?[0] as f64;
    assert_eq!(
        scaling,
        lora_cfg.scale(),
        "diffusers read a different alpha / rank"
    );
    check("lora unet", &ours, theirs.get("out").ok_or("no out")?)
}

#[test]
fn diffusers_folder_loads_and_samples_like_the_pipeline() -> TestResult {
    let r = reference_or_skip!();
    let dev = Device::Cpu;
    let sd = anchor_sd::StableDiffusion::from_diffusers_dir(&r.dir, None, DType::F32, &dev)?;
    let special = sd.text.special_tokens();
    assert_eq!((special.bos, special.eos, special.pad), (998, 999, 999));
    assert_eq!(sd.schedule.prediction, Prediction::Epsilon);
    let ids = r
        .get("pipe.ids")?
        .to_dtype(DType::U32)?
        .squeeze(0)?
        .to_vec1::<u32>()?;
    let prompt = anchor_sd::FittedPrompt {
        weights: vec![1.0; ids.len()],
        ids,
        truncated: false,
    };
    let cond = sd.text.encode(&[prompt])?;
    let sampler = DdimScheduler::new(sd.schedule.clone(), 3)?;
    let latents = anchor_sd::sampling::denoise(
        &sd.unet,
        &sampler,
        &r.get("pipe.latents")?,
        &cond,
        sd.text.empty(),
        7.5,
    )?;
    check("pipeline latents", &latents, &r.get("pipe.out_latents")?)?;
    let image = sd.vae.decode(&sd.vae.unscale_latents(&latents)?)?;
    let image = ((image / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
    check("pipeline image", &image, &r.get("pipe.image")?)
}
