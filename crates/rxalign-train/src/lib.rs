//! The trainer of rxalign, written once over
//! [`rxalign_policy::family::PolicyFamily`]: every family (the action-head
//! list policy, a language model, a researcher's own) is trained by the same
//! loops.
//!
//! - [`data`]: which training patients a stage trains on (all, or one of
//!   several disjoint parts).
//! - [`episodes`]: the one episode runner, for rollouts, greedy evaluation
//!   and recorded trajectories.
//! - [`sft`]: supervised fine-tuning on expert decisions.
//! - [`grpo`]: GRPO and step-wise GRPO (FLAME Eq. 6), split into collect,
//!   advantages, update and log.
//! - [`job`]: what an SFT or GRPO loop is given (data, settings,
//!   checkpoint, evaluation).
//! - [`learner`]: the one loop of every learner (SFT, GRPO, and through
//!   their stages the drug-level classifier and LAMO): it owns resume,
//!   evaluation, selection, checkpoints and the observer; a learner supplies
//!   only its step and its evaluation.
//! - [`kl`]: the KL estimators (exact, k3).
//! - [`parallel`]: data parallel: a step's batch sharded over devices,
//!   the shards' gradients weighted and summed (NCCL's all-reduce on CUDA).
//! - [`observer`]: what a loop reports after each epoch or iteration, and
//!   the evaluations it makes along the way.
//! - [`select`]: which step's model a loop hands on (the last, or the best
//!   on the validation patients, with early stopping).
//! - [`plugin`]: a family as a plugin of the experiment file's `policy`
//!   slot, trained on the run's device.

pub mod data;
pub mod episodes;
pub mod error;
pub mod grpo;
pub mod job;
pub mod kl;
pub mod learner;
pub mod observer;
pub mod parallel;
pub mod plugin;
pub mod select;
pub mod sft;

pub use error::TrainError;

#[cfg(test)]
mod lm_tests;
#[cfg(test)]
mod tests;
