//! Gradient sharing for ranks on CUDA devices through NCCL.
//!
//! [`NcclGroup`] averages the gradients on the devices with one NCCL all-reduce per
//! gradient tensor, so no gradient leaves the GPU. The launch, the NCCL unique id, the mean
//! loss and rank 0's broadcasts go through the [`ProcessGroup`] the launcher's variables
//! describe: it already holds a connection between every rank and rank 0.
//!
//! The binary links libnccl (`libnccl.so.2`), so a build with this feature needs it on the
//! loader's path at run time, e.g. from the `nvidia-nccl-cu13` wheel.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, NcclType, ReduceOp};
use candle_core::cuda_backend::{CudaDType, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{DType, Device, Storage, Tensor};

use super::{ProcessGroup, group_error};
use crate::error::{Error, Result};
use crate::trainer::GradientSync;

/// Length of NCCL's unique id (`ncclUniqueId`).
const ID_BYTES: usize = 128;

/// A communicator that is used by one thread at a time.
struct Communicator(Comm);

// SAFETY: an NCCL communicator may be used from any thread as long as calls on it do not
// overlap; `NcclGroup` keeps it behind a mutex, and the trainer calls it from one thread.
unsafe impl Send for Communicator {}

/// Ranks of a data-parallel launch on CUDA devices: gradients are averaged by NCCL on the
/// devices, everything else goes through the launch's [`ProcessGroup`].
pub struct NcclGroup {
    control: ProcessGroup,
    comm: Mutex<Communicator>,
}

impl std::fmt::Debug for NcclGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcclGroup")
            .field("rank", &self.control.rank)
            .field("world_size", &self.control.world_size)
            .finish_non_exhaustive()
    }
}

impl NcclGroup {
    /// Joins NCCL on `device` (this rank's GPU): rank 0 creates the unique id and hands it
    /// to the others through `control`.
    pub fn new(control: ProcessGroup, device: &Device) -> Result<Self> {
        let fail = group_error(control.rank, control.world_size);
        let Device::Cuda(cuda) = device else {
            return Err(fail(
                "NCCL needs a CUDA device: pass --device cuda[:N]".into(),
            ));
        };
        let mine = if control.rank == 0 {
            let id = Id::new().map_err(|e| fail(format!("creating the NCCL id: {e:?}")))?;
            id.internal().iter().map(|&c| c as u8).collect()
        } else {
            Vec::new()
        };
        let shared = control.broadcast(mine)?;
        let internal: [std::ffi::c_char; ID_BYTES] = shared
            .iter()
            .map(|&b| b as std::ffi::c_char)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| {
                fail(format!(
                    "rank 0 sent an NCCL id of {} bytes, not {ID_BYTES}",
                    shared.len()
                ))
            })?;
        let comm = Comm::from_rank(
            cuda.cuda_stream(),
            control.rank,
            control.world_size,
            Id::uninit(internal),
        )
        .map_err(|e| fail(format!("joining the NCCL communicator: {e:?}")))?;
        Ok(NcclGroup {
            control,
            comm: Mutex::new(Communicator(comm)),
        })
    }

    fn fail(&self, detail: String) -> Error {
        group_error(self.control.rank, self.control.world_size)(detail)
    }

    /// The mean over the ranks of one gradient tensor, on its device.
    fn mean(&self, comm: &Comm, grad: &Tensor) -> Result<Tensor> {
        let grad = grad.contiguous()?;
        let (storage, layout) = grad.storage_and_layout();
        let Storage::Cuda(cuda) = &*storage else {
            return Err(self.fail("a gradient is not on a CUDA device".into()));
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Err(self.fail("a gradient is not contiguous".into()));
        };
        let reduced = match grad.dtype() {
            DType::F32 => self.all_reduce::<f32>(comm, cuda, start, end)?,
            DType::F16 => self.all_reduce::<half::f16>(comm, cuda, start, end)?,
            DType::BF16 => self.all_reduce::<half::bf16>(comm, cuda, start, end)?,
            other => {
                return Err(self.fail(format!("NCCL does not average {other:?} gradients")));
            }
        };
        Ok(Tensor::from_storage(
            Storage::Cuda(reduced),
            grad.shape().clone(),
            BackpropOp::none(),
            false,
        ))
    }

    fn all_reduce<T: CudaDType + NcclType + DeviceRepr + ValidAsZeroBits>(
        &self,
        comm: &Comm,
        storage: &CudaStorage,
        start: usize,
        end: usize,
    ) -> Result<CudaStorage> {
        let device = storage.device().clone();
        let source = storage.as_cuda_slice::<T>()?.slice(start..end);
        let mut out: CudaSlice<T> = comm
            .stream()
            .alloc_zeros(end - start)
            .map_err(|e| self.fail(format!("allocating the mean: {e:?}")))?;
        comm.all_reduce(&source, &mut out, &ReduceOp::Avg)
            .map_err(|e| self.fail(format!("NCCL all-reduce: {e:?}")))?;
        Ok(CudaStorage::wrap_cuda_slice(out, device))
    }
}

impl GradientSync for NcclGroup {
    fn rank(&self) -> usize {
        self.control.rank
    }

    fn world_size(&self) -> usize {
        self.control.world_size
    }

    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)> {
        let means = {
            let comm = self
                .comm
                .lock()
                .map_err(|_| self.fail("the NCCL communicator lock is poisoned".into()))?;
            grads
                .iter()
                .map(|g| self.mean(&comm.0, g))
                .collect::<Result<Vec<_>>>()?
        };
        // The loss is one number: the control group's f64 mean keeps it exact.
        let (_, mean_loss) = self.control.all_reduce_mean(Vec::new(), loss)?;
        Ok((means, mean_loss))
    }

    fn broadcast(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        self.control.broadcast(message)
    }
}
