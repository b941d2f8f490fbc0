//! Policy families behind one trait ([`PolicyFamily`]); the trainer
//! (`rxalign-train`) is written once over it. The built-in family is the
//! action-head list policy (`set_encoder`, [`crate::list::SetEncoder`]).

mod base;

pub use base::{ActMemo, ActMode, Acted, Effect, LOG_FLOOR, PartReduction, PolicyFamily, Scored, State};
