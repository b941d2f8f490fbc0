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

/// The devices SFT and GRPO train on: one (the experiment file's
/// `device`), or, in a build with the `distributed` feature, several CUDA
/// GPUs of one machine (the file's `devices`) over which each batch is
/// sharded (data parallel). The first holds the model and the optimizer,
/// and runs everything that is not sharded (rollouts, evaluations, the
/// other stages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainDevices(Vec<TrainDevice>);

impl TrainDevices {
    /// Training on `device` alone.
    pub fn one(device: TrainDevice) -> Self {
        Self(vec![device])
    }

    /// An experiment file's `devices`, checked: this build shards (it has
    /// the `distributed` feature), two or more devices, each a CUDA GPU,
    /// none twice.
    pub fn parse(names: &[String]) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid(format!("`devices`: {message}"));
        if !cfg!(feature = "distributed") {
            return Err(invalid(
                "this build cannot shard training over several devices; build with `cargo build --release --features cuda,distributed`, or name one `device`".into(),
            ));
        }
        if names.len() < 2 {
            return Err(invalid(format!(
                "names {} device(s); data parallel needs two or more CUDA GPUs (one GPU: `device: \"cuda:0\"`)",
                names.len()
            )));
        }
        let mut devices = Vec::with_capacity(names.len());
        for name in names {
            let device: TrainDevice = name.parse().map_err(|e: PolicyError| invalid(e.to_string()))?;
            if !matches!(device, TrainDevice::Cuda(_)) {
                return Err(invalid(format!(
                    "`{name}` is not a CUDA GPU; data parallel runs on `cuda:N` devices only"
                )));
            }
            if devices.contains(&device) {
                return Err(invalid(format!("`{name}` is named twice")));
            }
            devices.push(device);
        }
        Ok(Self(devices))
    }

    /// The device of the model, the optimizer and everything not sharded.
    pub fn first(&self) -> TrainDevice {
        self.0[0]
    }

    /// Every device, the first first.
    pub fn as_slice(&self) -> &[TrainDevice] {
        &self.0
    }

    /// The GPU indices of a `cuda:N` list (`None` if a device is not CUDA).
    pub fn cuda_indices(&self) -> Option<Vec<usize>> {
        self.0
            .iter()
            .map(|d| match d {
                TrainDevice::Cuda(i) => Some(*i),
                TrainDevice::Cpu => None,
            })
            .collect()
    }
}

impl fmt::Display for TrainDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Makes the calling thread one of the threads the CPU backend (`flex`)
/// splits its operations over: rayon's global pool, built here with
/// `RAYON_NUM_THREADS` threads in all (one per core without it), this one
/// included. Call it first thing in `main`, before anything uses rayon,
/// and train on that thread.
///
/// Without it the pool's threads are all others: each operation `flex`
/// splits (every matrix product) is handed from the training thread to
/// them, and the training thread sleeps until they finish, two thread
/// switches per operation. On the list policy's small products, measured
/// with `benches/train_throughput.rs` on 2 threads, that was about a fifth
/// of an SFT epoch's time.
///
/// An error when the pool is already built (rayon was used before); the
/// program then runs as it would have without this call.
pub fn join_cpu_pool() -> Result<(), PolicyError> {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .map_err(|e| PolicyError::Invalid(format!("joining the CPU backend's thread pool: {e}")))
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
        let one = TrainDevices::one(TrainDevice::Cpu);
        assert_eq!(
            (one.first(), one.to_string()),
            (TrainDevice::Cpu, "cpu".to_string())
        );
        if cfg!(feature = "cuda") {
            assert_eq!(cuda.unwrap(), TrainDevice::Cuda(1));
        } else {
            assert!(cuda.unwrap_err().to_string().contains("--features cuda"));
        }
    }
}

/// This machine's memory in bytes (`MemTotal` of `/proc/meminfo`); `None`
/// where the system does not say.
pub fn host_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Bytes a trained network of `parameters` 32-bit floats takes at least:
/// the parameters, their gradients and Adam's two moments, plus
/// `activations` floats of one batch's forward and backward pass.
pub fn training_bytes(parameters: u128, activations: u128) -> u128 {
    parameters
        .saturating_mul(4 * 4)
        .saturating_add(activations.saturating_mul(4 * 2))
}

/// `1.5 GiB`, `287.6 GB`-style sizes for messages (binary units).
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses a size whose training would need more than this machine's
/// memory, before anything is allocated (an allocation that fails aborts
/// the process, and every run of it). `what` names the network, `field` the
/// setting at fault.
pub fn check_memory(what: &str, field: &'static str, value: usize, needed: u128) -> Result<(), PolicyError> {
    let Some(total) = host_memory_bytes() else {
        return Ok(());
    };
    if needed > u128::from(total) {
        return Err(PolicyError::Config {
            field,
            message: format!(
                "{value} makes the {what} need at least {} (parameters, gradients, optimizer state and one batch), more than this machine's {}",
                human_bytes(needed),
                human_bytes(u128::from(total))
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod devices_tests {
    use super::*;

    fn parse(names: &[&str]) -> Result<TrainDevices, String> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        TrainDevices::parse(&names).map_err(|e| e.to_string())
    }

    #[test]
    fn a_device_list_is_refused_without_the_feature_or_with_a_device_other_than_cuda() {
        let two = parse(&["cuda:0", "cuda:1"]);
        if !cfg!(feature = "distributed") {
            let e = two.unwrap_err();
            assert!(
                e.contains("devices") && e.contains("--features cuda,distributed"),
                "{e}"
            );
            return;
        }
        let two = two.unwrap();
        assert_eq!(two.first(), TrainDevice::Cuda(0));
        assert_eq!(two.cuda_indices(), Some(vec![0, 1]));
        assert_eq!(two.to_string(), "cuda:0, cuda:1");
        for (names, want) in [
            (&["cuda:0"][..], "two or more CUDA GPUs"),
            (&["cuda:0", "cpu"][..], "`cpu` is not a CUDA GPU"),
            (&["cuda:0", "gpu1"][..], "expected `cpu` or `cuda:N`"),
            (&["cuda:1", "cuda:1"][..], "`cuda:1` is named twice"),
        ] {
            let e = parse(names).unwrap_err();
            assert!(e.contains(want) && e.contains("devices"), "{names:?}: {e}");
        }
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(training_bytes(10, 1), 10 * 16 + 8);
        if host_memory_bytes().is_some() {
            let e = check_memory("list policy", "hidden", 1, u128::MAX).unwrap_err();
            assert!(e.to_string().contains("more than this machine's"), "{e}");
            check_memory("list policy", "hidden", 1, 1024).unwrap();
        }
    }
}
