//! Training-step benchmark of the SD-shaped tiny UNet (blocks 32/64 with cross-attention,
//! batch 2, 16x16 latents, AdamW): the same model `scripts/bench-train.sh` trains in
//! PyTorch + diffusers. Prints one JSON line: steps/s, seconds per step, peak RSS, and the
//! time spent in forward, backward and the optimiser.
//!
//! `anchor-train-bench [--steps N] [--warmup N] [--batch B] [--latent S] [--lora RANK]
//! [--sd15] [--f16|--bf16]` (`--sd15` benchmarks an SD-1.5-shaped UNet; `--f16`/`--bf16` run
//! the frozen UNet in that dtype with f32 adapters, as `anchor train --precision`, and are
//! meant for CUDA builds: bf16 is refused on the CPU).
//! `anchor-train-bench --fixture-tables DIR [--rows N]` instead writes the synthetic input
//! tables of `anchor_train::fixture` under DIR (to time `anchor train` end to end).
//! `anchor-train-bench --parity` runs each network on the build's device (a CUDA GPU when the
//! build has one) and on the CPU (`anchor_train::parity`), prints one JSON line per module and
//! exits with status 1 if any differs by more than the tolerance.
//! `anchor-train-bench --sample [--sd15] [--f16|--bf16] [--batch B] [--latent S] [--steps N]
//! [--runs R]` times sampling instead: B captions through the guided DDIM loop of
//! `anchor sample` (each caption and its unconditional twin in one UNet call of 2B rows per
//! step), then the VAE decode, on random weights.

use std::time::Instant;

use anchor_sd::{LoraConfig, NoiseSchedule, Prediction, UNet2DConditionModel, UNetConfig, Weights};
use anchor_train::optim::{AdamW, AdamWConfig, Params, accumulate, clip_grad_norm};
use anchor_train::rng::Rng;
use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Times one 3x3 convolution of the tiny UNet's first level ([2, 32, 16, 16]) forward, its
/// backward through candle's autograd, and the ops that backward uses (conv_transpose2d for
/// the input gradient, a conv2d over transposed tensors for the weight gradient).
fn profile_conv() -> Result<(), Box<dyn std::error::Error>> {
    let dev = candle_core::Device::Cpu;
    let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1., (2, 32, 16, 16), &dev)?)?;
    let w = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.1, (32, 32, 3, 3), &dev)?)?;
    let reps = 20;
    let time = |f: &dyn Fn() -> candle_core::Result<Tensor>| -> candle_core::Result<f64> {
        let _ = f()?;
        let t = Instant::now();
        for _ in 0..reps {
            let _ = f()?;
        }
        Ok(t.elapsed().as_secs_f64() / reps as f64 * 1e3)
    };
    let fwd = time(&|| x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1))?;
    let both = time(&|| {
        let y = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(x.as_tensor()).cloned().unwrap_or(y))
    })?;
    let gy = Tensor::randn(0f32, 1., (2, 32, 16, 16), &dev)?;
    let tr = time(&|| gy.conv_transpose2d(w.as_tensor(), 1, 0, 1, 1))?;
    let mm = time(&|| {
        let a = Tensor::randn(0f32, 1., (512, 288), &dev)?;
        let b = Tensor::randn(0f32, 1., (288, 32), &dev)?;
        a.matmul(&b)
    })?;
    println!(
        "{}",
        serde_json::json!({
            "conv2d_forward_ms": fwd,
            "conv2d_forward_backward_ms": both,
            "conv_transpose2d_ms": tr,
            "equivalent_im2col_matmul_ms": mm,
        })
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first statement of main; no other thread has started.
    unsafe { anchor_sd::setup_cpu_threads() };
    anchor_train::allocator::keep_freed_pages();
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--fixture-tables")
        .and_then(|i| args.get(i + 1))
    {
        let rows: usize = arg(&args, "--rows", 200);
        anchor_train::fixture::write_tables(std::path::Path::new(dir), rows, 1)?;
        println!("wrote {rows} fixture rows under {dir}");
        return Ok(());
    }
    if args.iter().any(|a| a == "--profile-conv") {
        return profile_conv();
    }
    if args.iter().any(|a| a == "--parity") {
        let device = anchor_train::step::default_device()?;
        let modules = anchor_train::parity::check(&candle_core::Device::Cpu, &device, 0.0)?;
        for m in &modules {
            println!(
                "{}",
                serde_json::json!({
                    "module": m.module,
                    "device": format!("{device:?}"),
                    "max_abs_diff": m.max_abs_diff,
                    "max_abs": m.max_abs,
                    "relative": m.relative(),
                    "tolerance": anchor_train::parity::TOLERANCE,
                    "passes": m.passes(),
                })
            );
        }
        if modules.iter().any(|m| !m.passes()) {
            std::process::exit(1);
        }
        return Ok(());
    }
    if args.iter().any(|a| a == "--sample") {
        return sample(&args);
    }
    let steps: usize = arg(&args, "--steps", 20);
    let warmup: usize = arg(&args, "--warmup", 3);
    let batch: usize = arg(&args, "--batch", 2);
    let latent: usize = arg(&args, "--latent", 16);
    let rank: usize = arg(&args, "--lora", 0);
    let sd15 = args.iter().any(|a| a == "--sd15");
    let precision = precision(&args);
    let device = anchor_train::step::default_device()?;
    precision.check_device(&device)?;
    let dtype = precision.dtype();
    let cfg = if sd15 {
        UNetConfig::sd15()
    } else {
        UNetConfig::tiny()
    };
    let ctx_dim = cfg.cross_attention_dim;
    let base_vm = VarMap::new();
    let lora_vm = VarMap::new();
    let unet = if rank > 0 {
        // Frozen base (plain tensors), trainable adapters.
        let _ = UNet2DConditionModel::new(
            Weights::new(VarBuilder::from_varmap(&base_vm, dtype, &device)),
            cfg.clone(),
        )?;
        let frozen = anchor_sd::lora::frozen(&base_vm, dtype, &device)?;
        UNet2DConditionModel::new(
            // As `anchor train`: f32 master weights for the adapters, cast in the graph.
            Weights::with_lora(
                frozen,
                VarBuilder::from_varmap(&lora_vm, DType::F32, &device).pp("unet"),
                LoraConfig {
                    rank,
                    alpha: rank as f64,
                },
            ),
            cfg,
        )?
    } else {
        UNet2DConditionModel::new(
            Weights::new(VarBuilder::from_varmap(&base_vm, dtype, &device)),
            cfg,
        )?
    };
    let params = if rank > 0 {
        Params::from_varmap(&lora_vm, |_| true)?
    } else {
        Params::from_varmap(&base_vm, |_| true)?
    };
    params.reinit(1)?;
    let mut opt = AdamW::new(&params, AdamWConfig::default())?;
    let schedule = NoiseSchedule::sd(Prediction::Epsilon);
    let mut rng = Rng::new(1, 2);
    let n = batch * 4 * latent * latent;
    let mut t_fwd = 0.0;
    let mut t_bwd = 0.0;
    let mut t_opt = 0.0;
    let mut started = Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            started = Instant::now();
            t_fwd = 0.0;
            t_bwd = 0.0;
            t_opt = 0.0;
        }
        let latents = Tensor::from_vec(rng.normals(n), (batch, 4, latent, latent), &device)?
            .to_dtype(dtype)?;
        let noise = Tensor::from_vec(rng.normals(n), (batch, 4, latent, latent), &device)?
            .to_dtype(dtype)?;
        let ctx = Tensor::from_vec(
            rng.normals(batch * 77 * ctx_dim),
            (batch, 77, ctx_dim),
            &device,
        )?
        .to_dtype(dtype)?;
        let ts: Vec<usize> = (0..batch).map(|_| rng.below(1000) as usize).collect();
        let a = Instant::now();
        let loss = anchor_sd::diffusion_loss(&unet, &schedule, &latents, &noise, &ts, &ctx, None)?;
        let _ = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let b = Instant::now();
        let grads = loss.backward()?;
        let mut acc = None;
        accumulate(&params, &mut acc, &grads)?;
        let acc = acc.unwrap_or_default();
        let c = Instant::now();
        let (_, clipped) = clip_grad_norm(&acc, 1.0)?;
        opt.step(&params, &clipped, 1e-4)?;
        let _ = params.vars()[0]
            .as_tensor()
            .flatten_all()?
            .get(0)?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        let d = Instant::now();
        t_fwd += (b - a).as_secs_f64();
        t_bwd += (c - b).as_secs_f64();
        t_opt += (d - c).as_secs_f64();
    }
    let secs = started.elapsed().as_secs_f64();
    let s = steps.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "anchor (candle)",
            "device": format!("{device:?}"),
            "dtype": format!("{dtype:?}"),
            "trainable_parameters": params.numel(),
            "steps": steps,
            "batch": batch,
            "latent": latent,
            "s_per_step": secs / s,
            "steps_per_s": s / secs,
            "images_per_s": s * batch as f64 / secs,
            "forward_s": t_fwd / s,
            "backward_s": t_bwd / s,
            "optimizer_s": t_opt / s,
            "peak_rss_mb": peak_rss_mb(),
        })
    );
    Ok(())
}

/// Times `runs` batches of guided DDIM sampling and VAE decoding (after one warm-up batch).
/// `--f16` or `--bf16`; f32 otherwise.
fn precision(args: &[String]) -> anchor_train::Precision {
    if args.iter().any(|a| a == "--f16") {
        anchor_train::Precision::F16
    } else if args.iter().any(|a| a == "--bf16") {
        anchor_train::Precision::Bf16
    } else {
        anchor_train::Precision::F32
    }
}

fn sample(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let sd15 = args.iter().any(|a| a == "--sd15");
    let batch: usize = arg(args, "--batch", 2);
    let latent: usize = arg(args, "--latent", if sd15 { 64 } else { 16 });
    let steps: usize = arg(args, "--steps", 20);
    let runs: usize = arg(args, "--runs", 2);
    let precision = precision(args);
    let device = anchor_train::step::default_device()?;
    precision.check_device(&device)?;
    let dtype = precision.dtype();
    let (unet_cfg, vae_cfg) = if sd15 {
        (UNetConfig::sd15(), anchor_sd::VaeConfig::sd())
    } else {
        (UNetConfig::tiny(), anchor_sd::VaeConfig::tiny())
    };
    let ctx_dim = unet_cfg.cross_attention_dim;
    let latent_channels = vae_cfg.latent_channels;
    let unet_vm = VarMap::new();
    let vae_vm = VarMap::new();
    let unet = UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&unet_vm, dtype, &device)),
        unet_cfg,
    )?;
    let vae =
        anchor_sd::AutoencoderKL::new(VarBuilder::from_varmap(&vae_vm, dtype, &device), vae_cfg)?;
    let mut rng = Rng::new(3, 4);
    let mut normals = |shape: &[usize]| -> candle_core::Result<Tensor> {
        let n = shape.iter().product();
        Tensor::from_vec(rng.normals(n), shape, &device)?.to_dtype(dtype)
    };
    let cond = normals(&[batch, 77, ctx_dim])?;
    let uncond = normals(&[batch, 77, ctx_dim])?;
    let mut unet_s = 0.0;
    let mut vae_s = 0.0;
    for run in 0..=runs {
        let latents = normals(&[batch, latent_channels, latent, latent])?;
        let sampler = anchor_sd::DdimScheduler::new(NoiseSchedule::sd(Prediction::Epsilon), steps)?;
        let a = Instant::now();
        let out = anchor_sd::sampling::denoise(&unet, &sampler, &latents, &cond, &uncond, 7.5)?;
        // Reading a value waits for the device.
        let _ = out
            .flatten_all()?
            .get(0)?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        let b = Instant::now();
        let rgb = anchor_sd::sampling::latents_to_rgb(&vae, &out)?;
        let _ = rgb.flatten_all()?.get(0)?.to_scalar::<u8>()?;
        let c = Instant::now();
        if run > 0 {
            unet_s += (b - a).as_secs_f64();
            vae_s += (c - b).as_secs_f64();
        }
    }
    let secs = unet_s + vae_s;
    let images = (runs.max(1) * batch) as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "anchor (candle)",
            "mode": "sample",
            "device": format!("{device:?}"),
            "dtype": format!("{dtype:?}"),
            "batch": batch,
            "latent": latent,
            "steps": steps,
            "runs": runs,
            "images_per_s": images / secs,
            "s_per_image": secs / images,
            "unet_s_per_batch": unet_s / runs.max(1) as f64,
            "vae_s_per_batch": vae_s / runs.max(1) as f64,
            "peak_rss_mb": peak_rss_mb(),
        })
    );
    Ok(())
}

/// The same allocator as the `anchor` binary, so the bench times what `anchor train` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
