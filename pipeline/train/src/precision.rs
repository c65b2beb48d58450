//! Mixed precision: the dtype the frozen UNet computes in, and dynamic loss scaling for f16.
//!
//! The scheme is diffusers' `--mixed_precision` for LoRA training: the frozen base weights are
//! loaded in the compute dtype (an fp16 checkpoint is converted on load), the adapters keep
//! f32 master weights and are cast into the compute dtype inside the graph, the loss is taken
//! in f32, and the optimiser state is f32. f16's narrow exponent lets small gradients underflow
//! to zero on the way back, so f16 runs scale the loss up before the backward pass and the
//! gradients down after it, as `torch.amp.GradScaler` does; bf16 has f32's exponent and needs
//! no scaling.

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The compute dtype of the frozen UNet during LoRA training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (the CPU default).
    #[default]
    F32,
    /// IEEE half precision, with dynamic loss scaling.
    F16,
    /// bfloat16 (no loss scaling needed).
    Bf16,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// Its name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// Whether the loss is scaled dynamically (f16 only).
    pub fn scales_loss(self) -> bool {
        self == Precision::F16
    }

    /// Whether this is the default (settings keys omit the default, so runs trained before the
    /// setting existed keep their keys).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// Refuses a precision `device` cannot train in: candle's CPU matmul has no bf16 kernel
    /// (f16 works there, slowly; both are meant for CUDA).
    pub fn check_device(self, device: &candle_core::Device) -> Result<()> {
        if self == Precision::Bf16 && device.is_cpu() {
            return Err(Error::Config {
                what: "precision",
                reason: "bf16 needs a CUDA device (build with --features cuda); candle's CPU \
                         matmul has no bf16 kernel: use f32 (or f16) on the CPU"
                    .into(),
            });
        }
        Ok(())
    }

    /// Parses `f32`, `f16`/`fp16` or `bf16` (`no` is diffusers' name for f32).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "no" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::Config {
                what: "precision",
                reason: format!("{other:?} is not one of f32, f16, bf16"),
            }),
        }
    }
}

/// Dynamic loss scaling with `torch.amp.GradScaler`'s defaults and update rule: start at
/// 2^16; a step whose unscaled gradients hold an inf or NaN is skipped and halves the scale;
/// 2000 finite steps in a row double it. Its state is part of every checkpoint, so a resumed
/// run scales (and skips) exactly as the uninterrupted one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The current factor on the loss.
    pub scale: f64,
    /// Finite steps since the last change of scale.
    pub growth_tracker: u64,
    /// Finite steps after which the scale doubles.
    pub growth_interval: u64,
    /// Optimiser steps skipped for non-finite gradients so far.
    pub skipped: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            growth_tracker: 0,
            growth_interval: 2000,
            skipped: 0,
        }
    }
}

impl LossScaler {
    /// Records whether the step's gradients were finite, and adapts the scale.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.growth_tracker += 1;
            if self.growth_tracker >= self.growth_interval {
                self.scale *= 2.0;
                self.growth_tracker = 0;
            }
        } else {
            self.scale *= 0.5;
            self.growth_tracker = 0;
            self.skipped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names_and_refuses_others() {
        assert_eq!(Precision::parse("bf16").ok(), Some(Precision::Bf16));
        assert_eq!(Precision::parse(" FP16").ok(), Some(Precision::F16));
        assert_eq!(Precision::parse("no").ok(), Some(Precision::F32));
        let err = Precision::parse("int8")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("int8") && err.contains("bf16"), "{err}");
        assert!(Precision::F16.scales_loss() && !Precision::Bf16.scales_loss());
        let cpu = candle_core::Device::Cpu;
        assert!(Precision::F16.check_device(&cpu).is_ok());
        let err = Precision::Bf16
            .check_device(&cpu)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CUDA"), "{err}");
    }

    /// `sum(300 * w)` computed in f16: the f16 gradient `scale * 300` overflows until the
    /// scale has halved from 2^16 to 128, so exactly nine steps are skipped, then the f32
    /// master weights move.
    #[test]
    fn f16_overflow_skips_steps_and_halves_the_scale() -> crate::Result<()> {
        use crate::optim::{AdamWConfig, Params};
        use crate::rng::Rng;
        use crate::trainer::{Checkpoints, LoopConfig, Objective, Schedule, train};
        use candle_core::{Device, Tensor};
        use candle_nn::{Init, VarBuilder, VarMap};

        struct Overflowing(Tensor);
        impl Objective for Overflowing {
            fn len(&self) -> usize {
                4
            }
            fn loss(
                &self,
                _: &[usize],
                _: std::ops::Range<usize>,
                _: &mut Rng,
            ) -> crate::Result<Tensor> {
                let w = self.0.to_dtype(DType::F16)?;
                Ok((w * 300.0)?.sum_all()?.to_dtype(DType::F32)?)
            }
        }

        let dev = Device::Cpu;
        let vm = VarMap::new();
        let w = VarBuilder::from_varmap(&vm, DType::F32, &dev).get_with_hints(
            4,
            "w",
            Init::Const(1.0),
        )?;
        let params = Params::from_varmap(&vm, |_| true)?;
        let tmp = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
        let cfg = LoopConfig {
            schedule: Schedule {
                steps: 12,
                batch_size: 1,
                grad_accum: 1,
                lr: 1e-2,
                warmup: 0,
                max_grad_norm: 0.0,
            },
            adamw: AdamWConfig::default(),
            seed: 1,
            checkpoint_every: 0,
            loss_scaling: true,
        };
        let ckpt = Checkpoints {
            dir: tmp.path().join("ckpt"),
            run_key: "k".into(),
        };
        let report = train(&cfg, &params, &Overflowing(w.clone()), &ckpt, None, |_| {
            Ok(())
        })?;
        assert_eq!(report.skipped_steps, 9);
        assert!(report.log[..9].iter().all(|r| !r.grad_norm.is_finite()));
        assert!(report.log[9..].iter().all(|r| r.grad_norm.is_finite()));
        let moved: Vec<f32> = w.to_vec1()?;
        assert!(moved.iter().all(|&x| x < 1.0), "{moved:?}");

        // Without a scaler a non-finite gradient (d sqrt(w) at w = 0) stops the run instead
        // of writing NaN into the weights.
        struct SqrtAtZero(Tensor);
        impl Objective for SqrtAtZero {
            fn len(&self) -> usize {
                4
            }
            fn loss(
                &self,
                _: &[usize],
                _: std::ops::Range<usize>,
                _: &mut Rng,
            ) -> crate::Result<Tensor> {
                Ok(self.0.sqrt()?.sum_all()?)
            }
        }
        let vm0 = VarMap::new();
        let zero = VarBuilder::from_varmap(&vm0, DType::F32, &dev).get_with_hints(
            4,
            "w",
            Init::Const(0.0),
        )?;
        let params0 = Params::from_varmap(&vm0, |_| true)?;
        let no_scaler = LoopConfig {
            loss_scaling: false,
            ..cfg
        };
        let ckpt2 = Checkpoints {
            dir: tmp.path().join("ckpt2"),
            run_key: "k".into(),
        };
        match train(
            &no_scaler,
            &params0,
            &SqrtAtZero(zero),
            &ckpt2,
            None,
            |_| Ok(()),
        ) {
            Err(crate::Error::NonFiniteGradient { step: 1, .. }) => {}
            other => panic!("expected a non-finite gradient error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn scaler_follows_grad_scaler_rules() {
        let mut s = LossScaler {
            growth_interval: 3,
            ..LossScaler::default()
        };
        s.update(false);
        assert_eq!((s.scale, s.skipped), (32768.0, 1));
        s.update(true);
        s.update(true);
        assert_eq!(s.scale, 32768.0);
        s.update(true);
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 0));
        s.update(true);
        s.update(false);
        assert_eq!((s.scale, s.growth_tracker, s.skipped), (32768.0, 0, 2));
    }
}
