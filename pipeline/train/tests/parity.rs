//! A LoRA and model folder written by anchor-train load in diffusers (`from_pretrained` +
//! `pipe.load_lora_weights`) with no missing or unexpected keys, and the UNet gives the same
//! output there as in `anchor_sd::StableDiffusion` within 1e-4. Needs `ANCHOR_PYTHON` (a
//! python with torch, diffusers, transformers, peft, safetensors: requirements/safe.txt);
//! skips without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anchor_sd::{
    AutoencoderKL, ClipTextModel, LoraConfig, StableDiffusion, UNet2DConditionModel, UNetConfig,
    VaeConfig, Weights,
};
use anchor_train::demo::demo_clip_config;
use anchor_train::folder;
use anchor_train::optim::Params;
use anchor_train::rng::Rng;
use anchor_train::stages::save_lora_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn vocab() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")
}

#[test]
fn our_lora_loads_in_diffusers_and_matches() -> TestResult {
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return Ok(());
    };
    if !vocab().is_file() {
        eprintln!("skipping: {} missing (make models)", vocab().display());
        return Ok(());
    }
    let dev = Device::Cpu;
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    // A random-init base in the diffusers layout.
    let ucfg = UNetConfig::tiny();
    let uvm = VarMap::new();
    let _ = UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&uvm, DType::F32, &dev)),
        ucfg.clone(),
    )?;
    let up = Params::from_varmap(&uvm, |_| true)?;
    up.reinit(3)?;
    folder::write_unet(&d.join("unet"), &ucfg, 8, &up.tensors())?;
    let vcfg = VaeConfig::tiny();
    let vvm = VarMap::new();
    let _ = AutoencoderKL::new(
        VarBuilder::from_varmap(&vvm, DType::F32, &dev),
        vcfg.clone(),
    )?;
    let vp = Params::from_varmap(&vvm, |_| true)?;
    vp.reinit(4)?;
    folder::write_vae(&d.join("vae"), &vcfg, 16, &vp.tensors())?;
    let ccfg = demo_clip_config();
    let cvm = VarMap::new();
    let _ = ClipTextModel::new(
        VarBuilder::from_varmap(&cvm, DType::F32, &dev).pp("text_model"),
        ccfg.clone(),
    )?;
    let cp = Params::from_varmap(&cvm, |_| true)?;
    cp.reinit(5)?;
    folder::write_text_encoder(&d.join("text_encoder"), &ccfg, &cp.tensors())?;
    folder::write_tokenizer(&d.join("tokenizer"), &vocab())?;
    folder::write_pipeline_files(d)?;

    // A LoRA with non-zero B (as after training).
    let lvm = VarMap::new();
    let base_vb = anchor_sd::weights::load_safetensors(
        &d.join("unet/diffusion_pytorch_model.safetensors"),
        DType::F32,
        &dev,
    )?;
    let lora_cfg = LoraConfig {
        rank: 4,
        alpha: 8.0,
    };
    let _ = UNet2DConditionModel::new(
        Weights::with_lora(
            base_vb,
            VarBuilder::from_varmap(&lvm, DType::F32, &dev).pp("unet"),
            lora_cfg,
        ),
        ucfg,
    )?;
    let lp = Params::from_varmap(&lvm, |_| true)?;
    lp.reinit(6)?;
    let mut rng = Rng::new(7, 0);
    for (name, var) in lp.names().iter().zip(lp.vars()) {
        if name.contains("lora_B") {
            var.set(&Tensor::from_vec(
                rng.uniforms(var.elem_count(), 0.2),
                var.dims(),
                &dev,
            )?)?;
        }
    }
    assert!(
        lp.names()
            .iter()
            .all(|n| n.starts_with("unet.") && n.contains(".lora_"))
    );
    let lora_path = d.join("lora/pytorch_lora_weights.safetensors");
    save_lora_file(&lora_path, &lp, lora_cfg)?;

    let sample = Tensor::from_vec(rng.normals(2 * 4 * 8 * 8), (2, 4, 8, 8), &dev)?;
    let timesteps = Tensor::new(&[10f32, 700.], &dev)?;
    let context = Tensor::from_vec(rng.normals(2 * 77 * 32), (2, 77, 32), &dev)?;
    anchor_train::st::write(
        &d.join("inputs.safetensors"),
        &[
            ("sample".into(), sample.clone()),
            ("timesteps".into(), timesteps.clone()),
            ("context".into(), context.clone()),
        ],
        &BTreeMap::new(),
    )?;
    let sd = StableDiffusion::from_diffusers_dir(d, Some(&lora_path), DType::F32, &dev)?;
    let ours = sd.unet.forward(&sample, &timesteps, &context)?;
    let plain = StableDiffusion::from_diffusers_dir(d, None, DType::F32, &dev)?
        .unet
        .forward(&sample, &timesteps, &context)?;
    let lora_effect = (&ours - &plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(
        lora_effect > 1e-3,
        "the LoRA changes nothing ({lora_effect})"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/lora_parity.py");
    let status = Command::new(python).arg(&script).arg(d).status()?;
    assert!(status.success(), "{} failed", script.display());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("report.json"))?)?;
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");
    assert_eq!(report["unexpected"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["mismatched_values"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(report["key_warnings"], serde_json::json!([]), "{report}");
    assert_eq!(report["n_keys"].as_u64(), Some(lp.len() as u64));
    let theirs = candle_core::safetensors::load(d.join("diffusers_out.safetensors"), &dev)?;
    let diff = (&ours - &theirs["out"])?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    eprintln!(
        "max |ours - diffusers| = {diff:.2e} over {} LoRA tensors",
        lp.len()
    );
    assert!(diff < 1e-4, "max abs diff {diff}");
    Ok(())
}
