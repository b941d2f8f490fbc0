//! The list policy: edits a drug list one action at a time (add a drug not
//! in the list, remove one that is, stop). As a policy family
//! ([`SetEncoder`], `kind: "set_encoder"`) it is trained by the shared
//! trainer (`rxalign-train`): SFT on expert edit sequences, then GRPO and
//! step-wise GRPO.

mod family;
mod model;
mod policy;

pub use family::{SetEncoder, SetEncoderConfig};
pub use model::{ListPolicy, ListPolicyConfig, MASKED, StateBatch};
pub use policy::{ActionPolicy, act_on_slots, sample_slot};

#[cfg(test)]
mod tests;
