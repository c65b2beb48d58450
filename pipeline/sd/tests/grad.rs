//! Every trainable `Var` of the tiny UNet and VAE receives a non-zero gradient, and with a
//! frozen base only the LoRA adapters do. candle 0.11.1 has ops without a backward whose
//! outputs silently become leaves (see DESIGN.md); these tests are the guard.

use anchor_sd::lora::frozen;
use anchor_sd::{AutoencoderKL, LoraConfig, UNet2DConditionModel, UNetConfig, VaeConfig, Weights};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Names of the variables of `varmap` whose gradient is missing or identically zero.
fn without_gradient(varmap: &VarMap, grads: &GradStore) -> Result<Vec<String>, candle_core::Error> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
    let mut missing = Vec::new();
    for (name, var) in data.iter() {
        let ok = match grads.get(var.as_tensor()) {
            None => false,
            Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
        };
        if !ok {
            missing.push(name.clone());
        }
    }
    missing.sort();
    Ok(missing)
}

fn unet_inputs(dev: &Device) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor)> {
    let x = Tensor::randn(0f32, 1., (2, 4, 16, 16), dev)?;
    let t = Tensor::new(&[3f32, 700.], dev)?;
    let ctx = Tensor::randn(0f32, 1., (2, 7, 32), dev)?;
    let target = Tensor::randn(0f32, 1., (2, 4, 16, 16), dev)?;
    Ok((x, t, ctx, target))
}

#[test]
fn every_tiny_unet_var_gets_a_gradient() -> TestResult {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let unet = UNet2DConditionModel::new(Weights::new(vb), UNetConfig::tiny())?;
    let (x, t, ctx, target) = unet_inputs(&dev)?;
    let loss = (unet.forward(&x, &t, &ctx)? - target)?.sqr()?.mean_all()?;
    let grads = loss.backward()?;
    let n = varmap.all_vars().len();
    assert!(n > 150, "only {n} vars in the tiny UNet");
    let missing = without_gradient(&varmap, &grads)?;
    assert!(
        missing.is_empty(),
        "{} of {n} UNet vars got no gradient: {missing:?}",
        missing.len()
    );
    Ok(())
}

#[test]
fn every_tiny_sd2_unet_var_gets_a_gradient() -> TestResult {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let cfg = UNetConfig {
        use_linear_projection: true,
        ..UNetConfig::tiny()
    };
    let unet = UNet2DConditionModel::new(Weights::new(vb), cfg)?;
    let (x, t, ctx, target) = unet_inputs(&dev)?;
    let loss = (unet.forward(&x, &t, &ctx)? - target)?.sqr()?.mean_all()?;
    let grads = loss.backward()?;
    let missing = without_gradient(&varmap, &grads)?;
    assert!(
        missing.is_empty(),
        "UNet vars without gradient: {missing:?}"
    );
    Ok(())
}

#[test]
fn every_tiny_vae_var_gets_a_gradient() -> TestResult {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let vae = AutoencoderKL::new(vb, VaeConfig::tiny())?;
    let image = Tensor::rand(-1f32, 1., (1, 3, 16, 16), &dev)?;
    let dist = vae.encode(&image)?;
    let noise = Tensor::randn(0f32, 1., dist.mean.shape(), &dev)?;
    let z = dist.sample_with(&noise)?;
    let loss = (vae.decode(&z)? - &image)?.sqr()?.mean_all()?;
    let grads = loss.backward()?;
    let n = varmap.all_vars().len();
    let missing = without_gradient(&varmap, &grads)?;
    assert!(
        missing.is_empty(),
        "{} of {n} VAE vars got no gradient: {missing:?}",
        missing.len()
    );
    Ok(())
}

#[test]
fn with_a_frozen_base_only_lora_vars_are_trainable() -> TestResult {
    let dev = Device::Cpu;
    let base_map = VarMap::new();
    // Materialise random base weights, then rebuild the UNet on detached copies of them.
    let plain = UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&base_map, DType::F32, &dev)),
        UNetConfig::tiny(),
    )?;
    let lora_map = VarMap::new();
    let w = Weights::with_lora(
        frozen(&base_map, DType::F32, &dev)?,
        VarBuilder::from_varmap(&lora_map, DType::F32, &dev).pp("unet"),
        LoraConfig::safe(),
    );
    let unet = UNet2DConditionModel::new(w, UNetConfig::tiny())?;
    let (x, t, ctx, target) = unet_inputs(&dev)?;

    // B starts at zero: a fresh adapter leaves the model unchanged.
    let diff = (plain.forward(&x, &t, &ctx)? - unet.forward(&x, &t, &ctx)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(diff < 1e-6, "fresh LoRA changed the output by {diff}");

    let names: Vec<String> = {
        let data = lora_map.data().lock().map_err(|_| "poisoned")?;
        let mut v: Vec<String> = data.keys().cloned().collect();
        v.sort();
        v
    };
    // 4 transformers (down 0, mid, up 1 x 2) x 2 attentions x 4 projections x (A, B).
    assert_eq!(names.len(), 64, "{names:?}");
    for key in [
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight",
        "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight",
        "unet.up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.lora_A.weight",
    ] {
        assert!(names.iter().any(|n| n == key), "missing {key}");
    }

    // With B = 0 the gradient of A is exactly zero; give B values as after a few steps.
    for (name, var) in lora_map.data().lock().map_err(|_| "poisoned")?.iter() {
        if name.contains("lora_B") {
            var.set(&(Tensor::randn(0f32, 1., var.shape(), &dev)? * 0.01)?)?;
        }
    }
    let loss = (unet.forward(&x, &t, &ctx)? - target)?.sqr()?.mean_all()?;
    let grads = loss.backward()?;
    let missing = without_gradient(&lora_map, &grads)?;
    assert!(
        missing.is_empty(),
        "LoRA vars without gradient: {missing:?}"
    );
    let base_with_grad: Vec<String> = base_map
        .data()
        .lock()
        .map_err(|_| "poisoned")?
        .iter()
        .filter(|(_, v)| grads.get(v.as_tensor()).is_some())
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        base_with_grad.is_empty(),
        "frozen base vars got gradients: {base_with_grad:?}"
    );
    Ok(())
}

#[test]
fn tiny_unet_training_steps_reduce_the_loss() -> TestResult {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let unet = UNet2DConditionModel::new(Weights::new(vb), UNetConfig::tiny())?;
    let (x, t, ctx, target) = unet_inputs(&dev)?;
    let params = candle_nn::ParamsAdamW {
        lr: 1e-3,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), params)?;
    let mut losses = Vec::new();
    let steps = 6;
    let start = std::time::Instant::now();
    for _ in 0..steps {
        let loss = (unet.forward(&x, &t, &ctx)? - &target)?.sqr()?.mean_all()?;
        opt.backward_step(&loss)?;
        losses.push(loss.to_scalar::<f32>()?);
    }
    let per_step = start.elapsed().as_secs_f64() / steps as f64;
    let fwd_start = std::time::Instant::now();
    let loss = (unet.forward(&x, &t, &ctx)? - &target)?.sqr()?.mean_all()?;
    let fwd = fwd_start.elapsed().as_secs_f64();
    let bwd_start = std::time::Instant::now();
    let _grads = loss.backward()?;
    let bwd = bwd_start.elapsed().as_secs_f64();
    eprintln!("forward {fwd:.3} s, backward {bwd:.3} s");
    let n_params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    eprintln!(
        "tiny UNet ({n_params} params), batch 2, 16x16: {per_step:.3} s per AdamW step; losses {losses:?}"
    );
    assert!(
        losses[steps - 1] < losses[0],
        "loss did not fall: {losses:?}"
    );
    Ok(())
}

#[test]
fn lora_file_round_trips_with_rank_and_alpha() -> TestResult {
    use anchor_sd::lora::{load_lora, save_lora};
    let dev = Device::Cpu;
    let base_map = VarMap::new();
    let _ = UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&base_map, DType::F32, &dev)),
        UNetConfig::tiny(),
    )?;
    let cfg = LoraConfig {
        rank: 2,
        alpha: 8.0,
    };
    let lora_map = VarMap::new();
    let unet = UNet2DConditionModel::new(
        Weights::with_lora(
            frozen(&base_map, DType::F32, &dev)?,
            VarBuilder::from_varmap(&lora_map, DType::F32, &dev).pp("unet"),
            cfg,
        ),
        UNetConfig::tiny(),
    )?;
    for (name, var) in lora_map.data().lock().map_err(|_| "poisoned")?.iter() {
        if name.contains("lora_B") {
            var.set(&(Tensor::randn(0f32, 1., var.shape(), &dev)? * 0.05)?)?;
        }
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pytorch_lora_weights.safetensors");
    save_lora(&lora_map, cfg, "unet", &path)?;
    let (vb, loaded_cfg) = load_lora("unet", &path, DType::F32, &dev)?;
    assert_eq!(loaded_cfg, cfg);
    let reloaded = UNet2DConditionModel::new(
        Weights::with_lora(frozen(&base_map, DType::F32, &dev)?, vb, loaded_cfg),
        UNetConfig::tiny(),
    )?;
    let (x, t, ctx, _) = unet_inputs(&dev)?;
    let a = unet.forward(&x, &t, &ctx)?;
    let b = reloaded.forward(&x, &t, &ctx)?;
    let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(d, 0.0);
    Ok(())
}

#[test]
fn half_precision_unet_tracks_f32() -> TestResult {
    // The fp16 path (GPU training) normalises and takes softmax in f32; on the same weights
    // the f16 UNet stays close to the f32 one.
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let full = UNet2DConditionModel::new(Weights::new(vb), UNetConfig::tiny())?;
    let half = UNet2DConditionModel::new(
        Weights::new(frozen(&varmap, DType::F16, &dev)?),
        UNetConfig::tiny(),
    )?;
    let (x, t, ctx, _) = unet_inputs(&dev)?;
    let a = full.forward(&x, &t, &ctx)?;
    let b = half.forward(&x.to_dtype(DType::F16)?, &t, &ctx.to_dtype(DType::F16)?)?;
    assert_eq!(b.dtype(), DType::F16);
    let d = (a - b.to_dtype(DType::F32)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(d < 0.05, "f16 UNet differs from f32 by {d}");
    Ok(())
}
