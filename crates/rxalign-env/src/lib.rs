//! The decision process: a prescription is built one decision at a time (add
//! a drug, remove a drug, stop), starting from a list given by a start-list
//! plugin, and every list is judged by a potential `Phi = Σ_k w_k phi_k`
//! made of reward-term plugins.
//!
//! - [`Episode`]: the state (visit and current list), masks of valid
//!   actions, the step budget, and incremental list statistics: adding or
//!   removing a drug updates the intersection with the ground truth and the
//!   count of interacting pairs with a few word operations on the bitset.
//! - [`reward`]: the reward terms and their weighted sum; the step reward is
//!   `Phi(S_{t+1}) − Phi(S_t)` (potential-based shaping), the outcome reward
//!   `Phi(S_T) − Phi(S_0)`, and each step keeps its per-term breakdown.
//! - [`start`]: start lists (empty, previous visit, corrupted ground truth,
//!   a predictions file).
//! - [`baseline`]: non-learned recommenders that write predictions files.
//! - [`line`](mod@line): the parser that turns a generated line into an edit of the
//!   list or a refusal.

pub mod baseline;
pub mod episode;
pub mod error;
pub mod headroom;
pub mod line;
pub mod reward;
pub mod start;
pub mod trajectory;

pub use episode::{Episode, ListStats, StepReward};
pub use error::EnvError;
pub use reward::{Reward, RewardConfig, RewardTerm, RewardTermSpec};
pub use start::StartList;
