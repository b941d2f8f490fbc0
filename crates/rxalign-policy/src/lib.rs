//! The floor of rxalign's policies: what every policy family is written
//! against and what the shared trainer (`rxalign-train`) needs of it, and
//! nothing of any one family. It links neither a language model nor a
//! tokenizer, so a researcher's own family compiles only this, burn and
//! `rxalign-core`. Model code is generic over `B: Backend`; the CPU default
//! is burn's pure-Rust `flex` backend with `simd`, and the `cuda` feature
//! adds burn's CUDA backend ([`device`]).
//!
//! - [`family`]: the policy-family trait, a family's settings
//!   ([`family::FamilyConfig`]) and acting over action slots.
//! - [`features`]: a visit's codes, previous drugs and note tokens as
//!   feature indices, what a family is built from.
//! - [`checkpoint`]: training checkpoints that a loop resumes from.
//! - [`device`]: the training device and the backend behind it.
//! - [`select`]: which of a training loop's models it hands on.
//! - [`threshold`]: lists from per-drug scores and the one threshold picker.
//! - [`resources`]: the terms a family sizes a training stage in.
//!
//! The built-in families are crates of their own: `rxalign-set-encoder`
//! (the `set_encoder` list policy and the drug-level classifier) and
//! `rxalign-llama` (FLAME's list editor, the `llama` family, and LAMO).

pub mod checkpoint;
pub mod device;
pub mod error;
pub mod family;
pub mod features;
pub mod resources;
pub mod select;
#[doc(hidden)]
pub mod test_support;
pub mod threshold;

pub use error::PolicyError;
pub use select::Select;

/// The CPU backend for training: autodiff over `flex`.
pub type CpuTrainBackend = burn::backend::Autodiff<burn::backend::Flex>;
