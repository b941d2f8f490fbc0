//! The `set_encoder` policy family ([`SetEncoder`], `kind: "set_encoder"`):
//! an action-head list policy that edits a drug list one action at a time
//! (add a drug not in the list, remove one that is, stop), trained by the
//! shared trainer (`rxalign-train`): SFT on expert edit sequences, then GRPO
//! and step-wise GRPO. Beside it, the drug-level classifier ([`classifier`],
//! FLAME's first stage and LAMO's point-wise recommender), whose visit
//! encoding it shares, and the note tokens both read ([`notes`]).

/// The family's `kind` in experiment files.
pub const KIND: &str = "set_encoder";

pub mod classifier;
mod family;
mod init;
mod model;
pub mod notes;
mod policy;
pub mod resources;

pub use family::{SetEncoder, SetEncoderConfig};
pub use model::{Bags, ListPolicy, ListPolicyConfig, MASKED, StateBatch};
pub use policy::ActionPolicy;

#[cfg(test)]
mod tests;
