//! Policies of rxalign on burn. Model code is generic over `B: Backend`;
//! the CPU default is burn's pure-Rust `flex` backend with `simd`, and the
//! `cuda` feature adds burn's CUDA backend ([`device`]).
//!
//! - [`notes`]: note tokens from the `tokenizers` crate.
//! - [`classifier`]: the drug-level classifier (FLAME's first stage, LAMO's
//!   point-wise recommender): a score per drug from the visit's codes,
//!   previous drugs and note tokens, trained with binary cross-entropy, its
//!   threshold chosen on validation.
//! - [`family`]: the policy-family trait the trainer (`rxalign-train`) is
//!   written over.
//! - [`list`]: the action-head list policy, the `set_encoder` family.
//! - [`flame`]: FLAME's list editor, a language model answering in drug
//!   names (the `llama` family).
//! - [`checkpoint`]: training checkpoints that a loop resumes from.
//! - [`lamo`]: LAMO's point-wise classifier as a language-model family: a
//!   yes/no question per (visit, drug), one LoRA adapter per drug group.
//! - [`select`]: which of a training loop's models it hands on.
//! - [`threshold`]: lists from per-drug scores and the one threshold picker.

pub mod checkpoint;
pub mod classifier;
pub mod device;
pub mod error;
pub mod family;
pub mod flame;
mod init;
pub mod lamo;
pub mod list;
pub mod notes;
pub mod resources;
pub mod select;
#[doc(hidden)]
pub mod test_support;
pub mod threshold;

pub use error::PolicyError;
pub use select::Select;

/// The CPU backend for training: autodiff over `flex`.
pub type CpuTrainBackend = burn::backend::Autodiff<burn::backend::Flex>;
