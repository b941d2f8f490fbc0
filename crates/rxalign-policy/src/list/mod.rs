//! The list policy: edits a drug list one action at a time (add a drug not
//! in the list, remove one that is, stop), trained first by supervision on
//! expert edit sequences (SFT).

mod grpo;
mod model;
mod policy;
mod sft;

pub use grpo::{GrpoLog, GrpoSettings, group_advantages, train_grpo};
pub use model::{ListPolicy, ListPolicyConfig, MASKED, StateBatch};
pub use policy::{ActionPolicy, LOG_FLOOR};
pub use sft::{DecodeStep, SftSettings, SftStarts, TrainedListPolicy, train_sft};

#[cfg(test)]
mod tests;
