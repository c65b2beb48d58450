//! Gradient sharing for data-parallel training inside one process: `N` threads, each
//! training its own copy of the weights as one rank of a run, average their gradients
//! through shared memory. It is the reference the multi-process all-reduce must match, and
//! it runs anywhere (no GPU, no network).
//!
//! The sum is taken in f64 in rank order, the same order on every rank, so all ranks get
//! bit-identical gradients and stay in lock-step.

use std::sync::{Barrier, Mutex};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::trainer::GradientSync;

/// One rank's contribution: its gradients flattened to f32, and its loss.
type Contribution = (Vec<Vec<f32>>, f64);

/// The shared state of `world_size` threads; [`ThreadGroup::rank`] hands out each
/// thread's [`GradientSync`].
#[derive(Debug)]
pub struct ThreadGroup {
    world_size: usize,
    slots: Mutex<Vec<Option<Contribution>>>,
    barrier: Barrier,
}

impl ThreadGroup {
    /// A group of `world_size` ranks (at least 1).
    pub fn new(world_size: usize) -> Result<Self> {
        if world_size == 0 {
            return Err(Error::Config {
                what: "data-parallel world size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(ThreadGroup {
            world_size,
            slots: Mutex::new(vec![None; world_size]),
            barrier: Barrier::new(world_size),
        })
    }

    /// The [`GradientSync`] of rank `rank`.
    pub fn rank(&self, rank: usize) -> Result<ThreadRank<'_>> {
        if rank >= self.world_size {
            return Err(Error::Config {
                what: "data-parallel rank",
                reason: format!("rank {rank} of world size {}", self.world_size),
            });
        }
        Ok(ThreadRank { group: self, rank })
    }

    fn poisoned() -> Error {
        Error::Config {
            what: "data-parallel group",
            reason: "another rank panicked while holding the gradients".into(),
        }
    }
}

/// One thread's handle on a [`ThreadGroup`].
#[derive(Debug, Clone, Copy)]
pub struct ThreadRank<'a> {
    group: &'a ThreadGroup,
    rank: usize,
}

impl GradientSync for ThreadRank<'_> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.group.world_size
    }

    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)> {
        let shapes: Vec<(Vec<usize>, DType, Device)> = grads
            .iter()
            .map(|g| (g.dims().to_vec(), g.dtype(), g.device().clone()))
            .collect();
        let flat = grads
            .iter()
            .map(|g| g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>())
            .collect::<candle_core::Result<Vec<_>>>()?;
        {
            let mut slots = self
                .group
                .slots
                .lock()
                .map_err(|_| ThreadGroup::poisoned())?;
            slots[self.rank] = Some((flat, loss));
        }
        // Everyone has written.
        self.group.barrier.wait();
        let (sums, loss_sum) = {
            let slots = self
                .group
                .slots
                .lock()
                .map_err(|_| ThreadGroup::poisoned())?;
            let mut sums: Vec<Vec<f64>> = shapes
                .iter()
                .map(|(dims, _, _)| vec![0.0; dims.iter().product()])
                .collect();
            let mut loss_sum = 0.0;
            for (rank, slot) in slots.iter().enumerate() {
                let (theirs, their_loss) = slot.as_ref().ok_or_else(|| Error::Config {
                    what: "data-parallel group",
                    reason: format!("rank {rank} reached the reduction without gradients"),
                })?;
                if theirs.len() != sums.len()
                    || theirs.iter().zip(&sums).any(|(t, s)| t.len() != s.len())
                {
                    return Err(Error::Config {
                        what: "data-parallel group",
                        reason: format!("rank {rank} sent gradients of other shapes"),
                    });
                }
                for (sum, grad) in sums.iter_mut().zip(theirs) {
                    for (s, &g) in sum.iter_mut().zip(grad) {
                        *s += f64::from(g);
                    }
                }
                loss_sum += their_loss;
            }
            (sums, loss_sum)
        };
        // Everyone has read; the slots may be overwritten by the next step.
        self.group.barrier.wait();
        let world = self.group.world_size as f64;
        let mean = sums
            .into_iter()
            .zip(shapes)
            .map(|(sum, (dims, dtype, device))| {
                let values: Vec<f32> = sum.into_iter().map(|s| (s / world) as f32).collect();
                Tensor::from_vec(values, dims, &Device::Cpu)?
                    .to_dtype(dtype)?
                    .to_device(&device)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((mean, loss_sum / world))
    }
}
