//! Where training runs: `cpu` (burn's `flex`) or, in a build with the
//! `cuda` feature, `cuda:N` (burn's CUDA backend on GPU `N`).

use std::fmt;
use std::str::FromStr;

use crate::PolicyError;

/// A training device, as an experiment file names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainDevice {
    Cpu,
    /// GPU `N` through CUDA (builds with the `cuda` feature only).
    Cuda(usize),
}

impl FromStr for TrainDevice {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let device = if s == "cpu" {
            Self::Cpu
        } else if let Some(index) = s.strip_prefix("cuda:") {
            let index = index.parse().map_err(|_| {
                PolicyError::Invalid(format!("device `{s}`: expected `cuda:N` with N a GPU index"))
            })?;
            Self::Cuda(index)
        } else {
            return Err(PolicyError::Invalid(format!(
                "device `{s}`: expected `cpu` or `cuda:N`"
            )));
        };
        if matches!(device, Self::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(PolicyError::Invalid(format!(
                "device `{s}`: this build has no CUDA; build with `cargo build --release --features cuda`"
            )));
        }
        Ok(device)
    }
}

impl fmt::Display for TrainDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// The CUDA backend for training: autodiff over burn's `Cuda`.
#[cfg(feature = "cuda")]
pub type CudaTrainBackend = burn::backend::Autodiff<burn::backend::Cuda>;

/// Calls `$body` with `B` the training backend of `$device` and `device`
/// its burn device: one generic code path for every backend.
///
/// The `cuda` arm is compiled by the calling crate's own `cuda` feature,
/// which must forward to `rxalign-policy/cuda` (as `rxalign-experiment`'s
/// does).
#[macro_export]
macro_rules! with_backend {
    ($device:expr, |$dev:ident: $b:ident| $body:expr) => {{
        match $device {
            $crate::device::TrainDevice::Cpu => {
                type $b = $crate::CpuTrainBackend;
                let $dev = burn::backend::flex::FlexDevice;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::device::TrainDevice::Cuda(index) => {
                type $b = $crate::device::CudaTrainBackend;
                let $dev = burn::backend::cuda::CudaDevice { index };
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::device::TrainDevice::Cuda(_) => {
                unreachable!("`cuda:N` is refused when the device is parsed in a build without CUDA")
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        assert_eq!("cpu".parse::<TrainDevice>().unwrap(), TrainDevice::Cpu);
        assert_eq!(TrainDevice::Cpu.to_string(), "cpu");
        let e = "gpu".parse::<TrainDevice>().unwrap_err().to_string();
        assert!(e.contains("expected `cpu` or `cuda:N`"), "{e}");
        let cuda = "cuda:1".parse::<TrainDevice>();
        if cfg!(feature = "cuda") {
            assert_eq!(cuda.unwrap(), TrainDevice::Cuda(1));
        } else {
            assert!(cuda.unwrap_err().to_string().contains("--features cuda"));
        }
    }
}
