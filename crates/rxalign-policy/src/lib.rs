//! Policies of rxalign on burn. Model code is generic over `B: Backend`;
//! the CPU default is burn's pure-Rust `flex` backend with `simd` (a `cuda`
//! feature comes with the list policies and their training).
//!
//! - [`classifier`]: the drug-level classifier (FLAME's first stage, LAMO's
//!   point-wise recommender): a score per drug from the visit's codes and the
//!   previous visit's drugs, trained with binary cross-entropy, its threshold
//!   chosen on validation.

pub mod checkpoint;
pub mod classifier;
pub mod device;
pub mod error;
mod init;
pub mod list;
pub mod notes;
#[cfg(test)]
mod test_support;

pub use error::PolicyError;

/// The CPU backend for training: autodiff over `flex`.
pub type CpuTrainBackend = burn::backend::Autodiff<burn::backend::Flex>;
