//! Device parity of the networks that training and sampling run: the same weights and inputs
//! through each module on a reference device (the CPU) and on another (a CUDA GPU), in f32,
//! and the largest difference of their outputs. A GPU build is only trusted once every module
//! agrees within [`TOLERANCE`] of its output's scale.
//!
//! Modules: the UNet's forward pass, the gradients of its LoRA adapters through the
//! diffusion loss, the VAE (encode, then decode the mean), the CLIP text encoder and one
//! cross-attention layer, each in the tiny configuration the unit tests use.

use std::collections::HashMap;

use anchor_sd::attention::{Attention, AttentionConfig};
use anchor_sd::{
    AutoencoderKL, ClipTextConfig, ClipTextModel, LoraConfig, NoiseSchedule, Prediction,
    UNet2DConditionModel, UNetConfig, VaeConfig, Weights,
};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::optim::Params;
use crate::rng::Rng;
use crate::{Error, Result};

/// Largest difference allowed, relative to the largest absolute value of the reference
/// output.
pub const TOLERANCE: f64 = 1e-3;

/// How far one module's output on the device is from the reference's.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleParity {
    /// Module and what was compared (`unet.forward`, `unet.lora_grad`, ...).
    pub module: &'static str,
    /// Largest absolute difference of any output element.
    pub max_abs_diff: f64,
    /// Largest absolute value of the reference output, the scale the difference is
    /// measured against.
    pub max_abs: f64,
}

impl ModuleParity {
    /// `max_abs_diff / max_abs` (the scale is taken as at least 1e-12).
    pub fn relative(&self) -> f64 {
        self.max_abs_diff / self.max_abs.max(1e-12)
    }

    /// Whether the module agrees within [`TOLERANCE`].
    pub fn passes(&self) -> bool {
        self.relative() <= TOLERANCE
    }
}

/// Runs every module on `reference` and on `device` and measures the differences.
/// `perturbation` is added to every weight on the device side; it is 0 for a real check and
/// lets a test show that a difference is caught.
pub fn check(reference: &Device, device: &Device, perturbation: f64) -> Result<Vec<ModuleParity>> {
    let pair = Pair {
        reference,
        device,
        perturbation,
    };
    Ok(vec![
        pair.unet_forward()?,
        pair.unet_lora_grad()?,
        pair.vae()?,
        pair.clip_text()?,
        pair.attention()?,
    ])
}

struct Pair<'a> {
    reference: &'a Device,
    device: &'a Device,
    perturbation: f64,
}

impl Pair<'_> {
    /// The reference's variables, deterministically initialised, as plain tensors on the
    /// device (plus the perturbation).
    fn copy(&self, varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
        let data = varmap.data().lock().map_err(|_| Error::Config {
            what: "variables",
            reason: "VarMap lock poisoned".into(),
        })?;
        let mut out = HashMap::with_capacity(data.len());
        for (name, var) in data.iter() {
            let t = var.as_detached_tensor().to_device(self.device)?;
            let t = if self.perturbation != 0.0 {
                (t + self.perturbation)?
            } else {
                t
            };
            out.insert(name.clone(), t);
        }
        Ok(out)
    }

    /// The reference's variables on the device, for building the same module there.
    fn vars_on_device(&self, varmap: &VarMap) -> Result<VarBuilder<'static>> {
        Ok(VarBuilder::from_tensors(
            self.copy(varmap)?,
            DType::F32,
            self.device,
        ))
    }

    /// A VarMap on the device holding trainable copies of `varmap`'s variables.
    fn trainable_copy(&self, varmap: &VarMap) -> Result<VarMap> {
        let copied = VarMap::new();
        {
            let mut data = copied.data().lock().map_err(|_| Error::Config {
                what: "variables",
                reason: "VarMap lock poisoned".into(),
            })?;
            for (name, t) in self.copy(varmap)? {
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        Ok(copied)
    }

    fn unet_forward(&self) -> Result<ModuleParity> {
        let vm = VarMap::new();
        let cfg = UNetConfig::tiny();
        let ctx_dim = cfg.cross_attention_dim;
        let unet = UNet2DConditionModel::new(
            Weights::new(VarBuilder::from_varmap(&vm, DType::F32, self.reference)),
            cfg.clone(),
        )?;
        Params::from_varmap(&vm, |_| true)?.reinit(11)?;
        let mut rng = Rng::new(11, 1);
        let latents = normals(&mut rng, &[2, 4, 16, 16], self.reference)?;
        let t = Tensor::new(&[10f32, 500.], self.reference)?;
        let ctx = normals(&mut rng, &[2, 77, ctx_dim], self.reference)?;
        let want = unet.forward(&latents, &t, &ctx)?;
        let there = UNet2DConditionModel::new(Weights::new(self.vars_on_device(&vm)?), cfg)?;
        let got = there.forward(
            &latents.to_device(self.device)?,
            &t.to_device(self.device)?,
            &ctx.to_device(self.device)?,
        )?;
        compare("unet.forward", &want, &got)
    }

    fn unet_lora_grad(&self) -> Result<ModuleParity> {
        let base = VarMap::new();
        let lora = VarMap::new();
        let cfg = UNetConfig::tiny();
        let ctx_dim = cfg.cross_attention_dim;
        let lora_cfg = LoraConfig {
            rank: 4,
            alpha: 4.0,
        };
        let _ = UNet2DConditionModel::new(
            Weights::new(VarBuilder::from_varmap(&base, DType::F32, self.reference)),
            cfg.clone(),
        )?;
        Params::from_varmap(&base, |_| true)?.reinit(12)?;
        let build = |base: VarBuilder<'static>, lora: &VarMap, dev: &Device| {
            UNet2DConditionModel::new(
                Weights::with_lora(
                    base,
                    VarBuilder::from_varmap(lora, DType::F32, dev).pp("unet"),
                    lora_cfg,
                ),
                cfg.clone(),
            )
        };
        let unet = build(
            anchor_sd::lora::frozen(&base, DType::F32, self.reference)?,
            &lora,
            self.reference,
        )?;
        let params = Params::from_varmap(&lora, |_| true)?;
        // Non-zero adapters on both sides, so every adapter matrix has a gradient.
        params.reinit(13)?;
        let mut rng = Rng::new(12, 1);
        let latents = normals(&mut rng, &[2, 4, 16, 16], self.reference)?;
        let noise = normals(&mut rng, &[2, 4, 16, 16], self.reference)?;
        let ctx = normals(&mut rng, &[2, 77, ctx_dim], self.reference)?;
        let ts = [10, 500];
        let schedule = NoiseSchedule::sd(Prediction::Epsilon);
        let loss = anchor_sd::diffusion_loss(&unet, &schedule, &latents, &noise, &ts, &ctx, None)?;
        let grads = loss.backward()?;
        let there_lora = self.trainable_copy(&lora)?;
        let there = build(self.vars_on_device(&base)?, &there_lora, self.device)?;
        let there_params = Params::from_varmap(&there_lora, |_| true)?;
        let there_loss = anchor_sd::diffusion_loss(
            &there,
            &schedule,
            &latents.to_device(self.device)?,
            &noise.to_device(self.device)?,
            &ts,
            &ctx.to_device(self.device)?,
            None,
        )?;
        let there_grads = there_loss.backward()?;
        let mut want = Vec::new();
        let mut got = Vec::new();
        for (name, var) in params.names().iter().zip(params.vars()) {
            let Some(i) = there_params.names().iter().position(|n| n == name) else {
                return Err(Error::Config {
                    what: "parity",
                    reason: format!("adapter {name} missing on the device"),
                });
            };
            let (Some(g), Some(h)) = (
                grads.get(var.as_tensor()),
                there_grads.get(there_params.vars()[i].as_tensor()),
            ) else {
                return Err(Error::Config {
                    what: "parity",
                    reason: format!("adapter {name} received no gradient"),
                });
            };
            want.push(g.flatten_all()?);
            got.push(h.to_device(self.reference)?.flatten_all()?);
        }
        compare(
            "unet.lora_grad",
            &Tensor::cat(&want, 0)?,
            &Tensor::cat(&got, 0)?,
        )
    }

    fn vae(&self) -> Result<ModuleParity> {
        let vm = VarMap::new();
        let vae = AutoencoderKL::new(
            VarBuilder::from_varmap(&vm, DType::F32, self.reference),
            VaeConfig::tiny(),
        )?;
        Params::from_varmap(&vm, |_| true)?.reinit(14)?;
        let mut rng = Rng::new(14, 1);
        let images = normals(&mut rng, &[1, 3, 32, 32], self.reference)?;
        let want = vae.decode(&vae.encode(&images)?.mean)?;
        let there = AutoencoderKL::new(self.vars_on_device(&vm)?, VaeConfig::tiny())?;
        let got = there.decode(&there.encode(&images.to_device(self.device)?)?.mean)?;
        compare("vae.encode_decode", &want, &got)
    }

    fn clip_text(&self) -> Result<ModuleParity> {
        let vm = VarMap::new();
        let cfg = ClipTextConfig::tiny();
        let clip = ClipTextModel::new(
            VarBuilder::from_varmap(&vm, DType::F32, self.reference),
            cfg.clone(),
        )?;
        Params::from_varmap(&vm, |_| true)?.reinit(15)?;
        let mut rng = Rng::new(15, 1);
        let ids: Vec<u32> = (0..2 * 77)
            .map(|_| rng.below(cfg.vocab_size as u64) as u32)
            .collect();
        let ids = Tensor::from_vec(ids, (2, 77), self.reference)?;
        let want = clip.forward(&ids)?;
        let there = ClipTextModel::new(self.vars_on_device(&vm)?, cfg)?;
        let got = there.forward(&ids.to_device(self.device)?)?;
        compare("clip_text.forward", &want, &got)
    }

    fn attention(&self) -> Result<ModuleParity> {
        let vm = VarMap::new();
        let cfg = AttentionConfig {
            query_dim: 32,
            cross_attention_dim: Some(24),
            heads: 4,
            head_dim: 8,
            qkv_bias: false,
        };
        let attn = Attention::new(
            Weights::new(VarBuilder::from_varmap(&vm, DType::F32, self.reference)),
            cfg,
        )?;
        Params::from_varmap(&vm, |_| true)?.reinit(16)?;
        let mut rng = Rng::new(16, 1);
        let x = normals(&mut rng, &[2, 64, 32], self.reference)?;
        let ctx = normals(&mut rng, &[2, 77, 24], self.reference)?;
        let want = attn.forward(&x, Some(&ctx))?;
        let there = Attention::new(Weights::new(self.vars_on_device(&vm)?), cfg)?;
        let got = there.forward(
            &x.to_device(self.device)?,
            Some(&ctx.to_device(self.device)?),
        )?;
        compare("attention.cross", &want, &got)
    }
}

/// Standard normal f32 samples of `shape` from `rng`.
fn normals(rng: &mut Rng, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(rng.normals(n), shape, device)?)
}

fn compare(module: &'static str, want: &Tensor, got: &Tensor) -> Result<ModuleParity> {
    let want = want.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let got = got.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    if want.dims() != got.dims() {
        return Err(Error::Config {
            what: "parity",
            reason: format!(
                "{module}: shapes differ, {:?} against {:?}",
                want.dims(),
                got.dims()
            ),
        });
    }
    let max_abs_diff = (&want - &got)?.abs()?.max_all()?.to_scalar::<f64>()?;
    let max_abs = want.abs()?.max_all()?.to_scalar::<f64>()?;
    Ok(ModuleParity {
        module,
        max_abs_diff,
        max_abs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_device_agrees_and_a_perturbed_copy_does_not() {
        let cpu = Device::Cpu;
        let same = check(&cpu, &cpu, 0.0).unwrap();
        assert_eq!(same.len(), 5);
        for m in &same {
            assert!(m.max_abs > 0.0, "{m:?}");
            assert!(m.passes(), "{m:?}");
        }
        let perturbed = check(&cpu, &cpu, 1e-2).unwrap();
        for m in &perturbed {
            assert!(!m.passes(), "{m:?}");
        }
    }
}
