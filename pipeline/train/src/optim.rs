//! The optimiser side of training: named trainable variables in a fixed order, AdamW with
//! state that a checkpoint can hold, global grad-norm clipping, the cosine schedule with
//! linear warm-up, and deterministic initialisation.
//!
//! candle-nn's `AdamW` keeps its moments private and walks a `VarMap` (a `HashMap`) in
//! arbitrary order; exact resume needs both the moments and a fixed summation order, so
//! this is a small re-implementation of `torch.optim.AdamW`'s update.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Trainable variables sorted by name.
#[derive(Debug, Clone)]
pub struct Params {
    names: Vec<String>,
    vars: Vec<Var>,
}

impl Params {
    /// Every variable of `varmap` whose name passes `keep`, sorted by name.
    pub fn from_varmap(varmap: &VarMap, keep: impl Fn(&str) -> bool) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| Error::Config {
            what: "variables",
            reason: "VarMap lock poisoned".into(),
        })?;
        let mut pairs: Vec<(String, Var)> = data
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars) = pairs.into_iter().unzip();
        Ok(Self { names, vars })
    }

    /// Names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Variables in order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there is nothing to train.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn numel(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// `(name, current value)` pairs, for saving.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .cloned()
            .zip(self.vars.iter().map(|v| v.as_tensor().clone()))
            .collect()
    }

    /// Sets every variable from `values` (a checkpoint); every name must be present with
    /// the same shape.
    pub fn load(&self, values: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.names.iter().zip(&self.vars) {
            let v = values.get(name).ok_or_else(|| Error::Input {
                what: "saved variables".into(),
                reason: format!("{name} is missing"),
            })?;
            if v.dims() != var.dims() {
                return Err(Error::Input {
                    what: "saved variables".into(),
                    reason: format!("{name} has shape {:?}, expected {:?}", v.dims(), var.dims()),
                });
            }
            var.set(&v.to_dtype(var.dtype())?.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// Re-draws every variable from `seed`, deterministically (candle's CPU RNG cannot be
    /// seeded): constants (norm scales, zero biases, LoRA `B`) keep their value; other
    /// weights and biases are uniform in `±1/sqrt(fan_in)` (PyTorch's `Linear`/`Conv2d`
    /// default); embeddings are normal with std 0.02 (transformers' CLIP init).
    pub fn reinit(&self, seed: u64) -> Result<()> {
        let fan_in: HashMap<String, usize> = self
            .names
            .iter()
            .zip(&self.vars)
            .filter(|(n, v)| n.ends_with(".weight") && v.rank() >= 2)
            .map(|(n, v)| {
                let prefix = n.trim_end_matches(".weight").to_owned();
                (prefix, v.dims()[1..].iter().product())
            })
            .collect();
        for (i, (name, var)) in self.names.iter().zip(&self.vars).enumerate() {
            let flat = var.as_tensor().flatten_all()?;
            let min = flat.min(0)?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            let max = flat.max(0)?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            if min == max {
                continue;
            }
            let n = var.elem_count();
            let mut rng = Rng::new(seed, 0x1417 + i as u64);
            let values = if name.contains("embedding") {
                rng.normals(n).into_iter().map(|x| x * 0.02).collect()
            } else {
                let prefix = name
                    .trim_end_matches(".weight")
                    .trim_end_matches(".bias")
                    .to_owned();
                let fan = if var.rank() >= 2 {
                    var.dims()[1..].iter().product()
                } else {
                    fan_in.get(&prefix).copied().unwrap_or(var.elem_count())
                };
                rng.uniforms(n, 1.0 / (fan.max(1) as f64).sqrt())
            };
            let t = Tensor::from_vec(values, var.dims(), var.device())?.to_dtype(var.dtype())?;
            var.set(&t)?;
        }
        Ok(())
    }
}

/// AdamW hyper-parameters (torch defaults except the learning rate).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// `beta1`.
    pub beta1: f64,
    /// `beta2`.
    pub beta2: f64,
    /// `eps`.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// `torch.optim.AdamW` over [`Params`], with its moments exposed for checkpoints.
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far.
    pub t: u64,
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(params: &Params, cfg: AdamWConfig) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Self {
            cfg,
            m: params
                .vars
                .iter()
                .map(zeros)
                .collect::<candle_core::Result<_>>()?,
            v: params
                .vars
                .iter()
                .map(zeros)
                .collect::<candle_core::Result<_>>()?,
            t: 0,
        })
    }

    /// One update with gradients `grads` (one per variable, in order) at learning rate `lr`.
    pub fn step(&mut self, params: &Params, grads: &[Tensor], lr: f64) -> Result<()> {
        if grads.len() != params.len() {
            return Err(Error::Config {
                what: "optimiser",
                reason: format!("{} gradients for {} variables", grads.len(), params.len()),
            });
        }
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (i, (var, g)) in params.vars.iter().zip(grads).enumerate() {
            // Detached so the moments never chain one step's graph to the next.
            let g = g.detach();
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            let decayed = (var.as_tensor() * (1.0 - lr * c.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<name>`, `v.<name>`).
    pub fn state(&self, params: &Params) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * params.len());
        for (i, name) in params.names.iter().enumerate() {
            out.push((format!("m.{name}"), self.m[i].clone()));
            out.push((format!("v.{name}"), self.v[i].clone()));
        }
        out
    }

    /// Restores the moments saved by [`Self::state`] and the update count.
    pub fn load_state(
        &mut self,
        params: &Params,
        saved: &HashMap<String, Tensor>,
        t: u64,
    ) -> Result<()> {
        for (i, (name, var)) in params.names.iter().zip(&params.vars).enumerate() {
            for (slot, key) in [(0, format!("m.{name}")), (1, format!("v.{name}"))] {
                let s = saved.get(&key).ok_or_else(|| Error::Input {
                    what: "optimiser state".into(),
                    reason: format!("{key} is missing"),
                })?;
                let s = s.to_dtype(var.dtype())?.to_device(var.device())?;
                if slot == 0 {
                    self.m[i] = s;
                } else {
                    self.v[i] = s;
                }
            }
        }
        self.t = t;
        Ok(())
    }
}

/// Sums the gradients of `params` from several backward passes (gradient accumulation).
/// A variable the loss does not reach is an error: it would silently never train.
pub fn accumulate(params: &Params, acc: &mut Option<Vec<Tensor>>, grads: &GradStore) -> Result<()> {
    let mut fresh = Vec::with_capacity(params.len());
    for (name, var) in params.names.iter().zip(&params.vars) {
        let g = grads.get(var.as_tensor()).ok_or_else(|| Error::Config {
            what: "trainable variables",
            reason: format!("{name} received no gradient"),
        })?;
        // A variable's gradient keeps the ops that made it, and through them every
        // activation of the forward pass; detached, the step's graph is freed once the
        // backward pass ends instead of living on in the optimiser's moments.
        fresh.push(g.detach());
    }
    *acc = Some(match acc.take() {
        None => fresh,
        Some(prev) => prev
            .iter()
            .zip(&fresh)
            .map(|(a, b)| a + b)
            .collect::<candle_core::Result<_>>()?,
    });
    Ok(())
}

/// Global L2 norm of `grads` (summed in f64 in variable order), and the grads scaled so
/// the norm is at most `max_norm` (torch's `clip_grad_norm_`: `max / (norm + 1e-6)`).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<(f64, Vec<Tensor>)> {
    let mut total = 0f64;
    for g in grads {
        total += g
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
    }
    let norm = total.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if max_norm > 0.0 && coef < 1.0 {
        let scaled = grads
            .iter()
            .map(|g| g * coef)
            .collect::<candle_core::Result<_>>()?;
        Ok((norm, scaled))
    } else {
        Ok((norm, grads.to_vec()))
    }
}

/// Learning rate at optimiser step `step` (from 1): linear warm-up over `warmup` steps,
/// then cosine decay to 0 at `total` (diffusers' `get_cosine_schedule_with_warmup`).
pub fn cosine_lr(base: f64, step: u64, warmup: u64, total: u64) -> f64 {
    // diffusers evaluates the lambda at the scheduler's step count before the update (0-based).
    let s = step.saturating_sub(1) as f64;
    if (step.saturating_sub(1)) < warmup {
        return base * s / (warmup.max(1) as f64);
    }
    let progress = (s - warmup as f64) / ((total.saturating_sub(warmup)).max(1) as f64);
    base * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

/// Names and sizes, for logs and tests.
pub fn summary(params: &Params) -> BTreeMap<String, usize> {
    params
        .names
        .iter()
        .zip(&params.vars)
        .map(|(n, v)| (n.clone(), v.elem_count()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarBuilder;

    #[test]
    fn adamw_matches_torch_update() -> Result<()> {
        // p = torch.nn.Parameter(torch.tensor([1., -2.]))
        // o = torch.optim.AdamW([p], lr=0.1, weight_decay=0.01)
        // p.grad = torch.tensor([0.5, 0.25]); o.step()  ->  tensor([ 0.8990, -2.0980])
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let _ = vb.get_with_hints(2, "p", candle_nn::Init::Const(0.0))?;
        let params = Params::from_varmap(&vm, |_| true)?;
        params.vars()[0].set(&Tensor::new(&[1f32, -2.], &dev)?)?;
        let mut opt = AdamW::new(&params, AdamWConfig::default())?;
        let g = Tensor::new(&[0.5f32, 0.25], &dev)?;
        opt.step(&params, &[g], 0.1)?;
        let p: Vec<f32> = params.vars()[0].as_tensor().to_vec1()?;
        assert!((p[0] - 0.8990).abs() < 1e-4, "{p:?}");
        assert!((p[1] - (-2.0980)).abs() < 1e-4, "{p:?}");
        Ok(())
    }

    #[test]
    fn gradients_and_moments_hold_no_graph_between_steps() -> Result<()> {
        // y = w2 · (w1 · x): w2's gradient is built from the activation w1 · x, so left
        // attached it would keep this step's forward graph alive in the moments for good.
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let init = candle_nn::Init::Const(0.5);
        let _ = vb.get_with_hints((3, 3), "w1", init)?;
        let _ = vb.get_with_hints((1, 3), "w2", init)?;
        let params = Params::from_varmap(&vm, |_| true)?;
        let [w1, w2] = [0, 1].map(|i| params.vars()[i].as_tensor().clone());
        let (w1, w2) = if params.names()[0] == "w1" {
            (w1, w2)
        } else {
            (w2, w1)
        };
        let mut opt = AdamW::new(&params, AdamWConfig::default())?;
        for _ in 0..2 {
            let x = Tensor::new(&[[1f32], [2.], [3.]], &dev)?;
            let loss = w2.matmul(&w1.matmul(&x)?)?.sum_all()?;
            let mut acc = None;
            accumulate(&params, &mut acc, &loss.backward()?)?;
            let grads = acc.unwrap_or_default();
            assert_eq!(grads.len(), 2);
            assert!(
                grads.iter().all(|g| !g.track_op()),
                "gradients keep their graph"
            );
            opt.step(&params, &grads, 1e-2)?;
            let state = opt.state(&params);
            assert!(
                state.iter().all(|(_, m)| !m.track_op()),
                "moments keep a graph"
            );
        }
        Ok(())
    }

    #[test]
    fn clipping_and_schedule() -> Result<()> {
        let dev = Device::Cpu;
        let g = vec![Tensor::new(&[3f32, 4.], &dev)?];
        let (norm, clipped) = clip_grad_norm(&g, 1.0)?;
        assert!((norm - 5.0).abs() < 1e-9);
        let c: Vec<f32> = clipped[0].to_vec1()?;
        assert!((c[0] - 0.6).abs() < 1e-5 && (c[1] - 0.8).abs() < 1e-5);
        assert_eq!(cosine_lr(1.0, 1, 2, 10), 0.0);
        assert!((cosine_lr(1.0, 2, 2, 10) - 0.5).abs() < 1e-12);
        assert!((cosine_lr(1.0, 3, 2, 10) - 1.0).abs() < 1e-12);
        assert!(cosine_lr(1.0, 10, 2, 10) < 0.05);
        Ok(())
    }

    #[test]
    fn reinit_is_deterministic_and_keeps_constants() -> Result<()> {
        let dev = Device::Cpu;
        let draw = || -> Result<Vec<f32>> {
            let vm = VarMap::new();
            let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
            let _ = candle_nn::linear(8, 4, vb.pp("lin"))?;
            let _ = vb.get_with_hints(3, "norm.weight", candle_nn::Init::Const(1.0))?;
            let p = Params::from_varmap(&vm, |_| true)?;
            p.reinit(5)?;
            let mut all = Vec::new();
            for t in p.tensors() {
                all.extend(t.1.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok(all)
        };
        let (a, b) = (draw()?, draw()?);
        assert_eq!(a, b);
        let bound = 1.0 / 8f32.sqrt();
        // lin.bias (4), lin.weight (32), norm.weight (3) in name order.
        assert!(a[..36].iter().all(|x| x.abs() <= bound));
        assert_eq!(&a[36..], &[1.0, 1.0, 1.0]);
        Ok(())
    }
}
