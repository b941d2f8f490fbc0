//! Policy families behind one trait ([`PolicyFamily`]); the trainer
//! (`rxalign-train`) is written once over it. A family is registered by
//! its settings ([`FamilyConfig`]); one whose decision is an action slot
//! acts with [`act_on_slots`]. The built-in families live in their own
//! crates: `rxalign-set-encoder` (`set_encoder`) and `rxalign-llama`
//! (`llama`).

mod base;
mod config;
mod slots;

pub use base::{ActMemo, ActMode, Acted, Effect, LOG_FLOOR, PartReduction, PolicyFamily, Scored, State};
pub use config::{FamilyConfig, FamilyContext};
pub use slots::{EXP_FLOOR, act_on_slots, entropy, masked_exp, masked_log_softmax, sample_slot};
