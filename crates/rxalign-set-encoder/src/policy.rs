//! The action-head trait: what every action-head list network gives for a
//! batch of states (masked logits, log-probabilities, entropy); the
//! `set_encoder` family acts through it (drawing a slot with the floor's
//! [`rxalign_policy::family::act_on_slots`]).

use burn::prelude::*;

use crate::StateBatch;
use rxalign_policy::PolicyError;
use rxalign_policy::family::{entropy, masked_log_softmax};

/// A policy over the decision process's actions (add drug `d` at slot
/// `d`, remove it at `drugs + d`, stop at `2·drugs`).
pub trait ActionPolicy<B: Backend> {
    /// The logits of every action, invalid ones masked (about
    /// [`crate::MASKED`]).
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`
    fn logits(&self, state: StateBatch<B>) -> Tensor<B, 2>;

    /// `log π(a | s)` of every action at `temperature`.
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`
    fn log_probs(&self, state: StateBatch<B>, temperature: f64) -> Tensor<B, 2> {
        log_probs_at(self.logits(state), temperature)
    }

    /// The entropy of each state's action distribution at `temperature`.
    ///
    /// # Shapes
    /// - output: `[batch]`
    fn entropy(&self, state: StateBatch<B>, temperature: f64) -> Tensor<B, 1> {
        entropy(self.log_probs(state, temperature), 1).squeeze_dim::<1>(1)
    }
}

/// `log_softmax(logits / temperature)` over the actions. At temperature 1
/// the division, which would leave every value as it is, is not made (on
/// an autodiff backend it would be one more pass and node per step).
///
/// # Shapes
/// - `logits`, output: `[batch, actions]`
pub(crate) fn log_probs_at<B: Backend>(logits: Tensor<B, 2>, temperature: f64) -> Tensor<B, 2> {
    if temperature == 1.0 {
        masked_log_softmax(logits, 1)
    } else {
        masked_log_softmax(logits / temperature, 1)
    }
}

/// The rows of a `[batch, actions]` tensor.
pub(crate) fn rows<B: Backend>(t: Tensor<B, 2>) -> Result<Vec<Vec<f32>>, PolicyError> {
    let [_, width] = t.dims();
    let values: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| PolicyError::Invalid(format!("reading log-probabilities: {e:?}")))?;
    Ok(values.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
}
