//! Where the tensor steps (train, sample, eval, fid) compute: `--device` / `run.device`.
//!
//! The device is never part of a step's parameters: an output computed on the CPU stays up
//! to date when the next run has a GPU, and the other way round. CPU and CUDA sum in a
//! different order, so their outputs agree to float rounding, not bit for bit.

use std::fmt;
use std::str::FromStr;

use anchor_core::Error as CoreError;
use candle_core::Device;

/// Whether this binary was built with the `cuda` feature.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CUDA device `LOCAL_RANK` (0 when unset) when the build has CUDA and it is
    /// present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N (`cuda` = `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            CoreError::Config(format!(
                "device {s:?} is not one of auto, cpu, cuda, cuda:N"
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The error for a CUDA request that this build cannot serve.
fn not_built(choice: DeviceChoice) -> anyhow::Error {
    CoreError::Config(format!(
        "--device {choice} needs a binary built with the `cuda` feature \
         (`cargo build --release -p anchor-cli --features cuda`, or `make train CUDA=1`); \
         this one computes on the CPU only (--device cpu)"
    ))
    .into()
}

impl DeviceChoice {
    /// Fails for a CUDA request in a build without CUDA, before any work starts.
    pub fn check_built(self) -> anyhow::Result<()> {
        match self {
            DeviceChoice::Cuda(_) if !CUDA_BUILT => Err(not_built(self)),
            _ => Ok(()),
        }
    }

    /// Opens the device. `Auto` falls back to the CPU when no CUDA device answers; an
    /// explicit `cuda:N` that does not answer is the user's error.
    pub fn open(self) -> anyhow::Result<Device> {
        self.check_built()?;
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto if !CUDA_BUILT => Ok(Device::Cpu),
            DeviceChoice::Auto => match Device::new_cuda(local_rank()) {
                Ok(device) => Ok(device),
                Err(err) => {
                    tracing::warn!("no CUDA device answered ({err}); computing on the CPU");
                    Ok(Device::Cpu)
                }
            },
            DeviceChoice::Cuda(n) => Device::new_cuda(n).map_err(|err| {
                CoreError::Config(format!("CUDA device {n} is not available: {err}")).into()
            }),
        }
    }
}

/// The GPU `auto` picks: `LOCAL_RANK` (set by torchrun and the deploy templates for each
/// process of a data-parallel run on one machine), else 0.
fn local_rank() -> usize {
    std::env::var("LOCAL_RANK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// How a device is named in logs and summaries.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_and_refuses_the_rest() {
        let ok = [
            ("auto", DeviceChoice::Auto),
            ("", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
        ];
        for (text, want) in ok {
            assert_eq!(text.parse::<DeviceChoice>().ok(), Some(want), "{text}");
        }
        for bad in ["cuda:", "cuda:x", "metal", "cuda:-1", "tpu"] {
            assert!(bad.parse::<DeviceChoice>().is_err(), "{bad}");
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn cpu_always_opens_and_cuda_needs_the_feature() {
        assert!(DeviceChoice::Cpu.open().is_ok_and(|d| d.is_cpu()));
        let cuda = DeviceChoice::Cuda(0).check_built();
        assert_eq!(cuda.is_ok(), CUDA_BUILT);
        if let Err(err) = cuda {
            assert!(format!("{err:#}").contains("`cuda` feature"), "{err:#}");
        }
        if !CUDA_BUILT {
            assert!(DeviceChoice::Auto.open().is_ok_and(|d| d.is_cpu()));
        }
    }
}
