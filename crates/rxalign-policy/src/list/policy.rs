//! The action-head trait: what every action-head list network gives for a
//! batch of states (masked logits, log-probabilities, entropy), and the
//! drawing of an action slot; the `set_encoder` family acts through it.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng as _;
use rxalign_core::Rng;

use super::StateBatch;
use crate::PolicyError;
use crate::family::{ActMode, Acted, LOG_FLOOR};

/// A policy over the decision process's actions (add drug `d` at slot
/// `d`, remove it at `drugs + d`, stop at `2·drugs`).
pub trait ActionPolicy<B: Backend> {
    /// The logits of every action, invalid ones masked (about
    /// [`super::model::MASKED`]).
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`
    fn logits(&self, state: StateBatch<B>) -> Tensor<B, 2>;

    /// `log π(a | s)` of every action at `temperature`.
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`
    fn log_probs(&self, state: StateBatch<B>, temperature: f64) -> Tensor<B, 2> {
        log_softmax(self.logits(state) / temperature, 1)
    }

    /// The entropy of each state's action distribution at `temperature`.
    ///
    /// # Shapes
    /// - output: `[batch]`
    fn entropy(&self, state: StateBatch<B>, temperature: f64) -> Tensor<B, 1> {
        let logp = self.log_probs(state, temperature); // [batch, actions]
        (logp.clone().exp() * logp.clamp_min(LOG_FLOOR))
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            .neg()
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

/// Each state's decision over action slots from its row of every slot's
/// log-probabilities: the most probable slot ([`ActMode::Greedy`]) or one
/// drawn from `rng` ([`ActMode::Sample`]), with its log-probability as its
/// one part. A row holding NaN or +∞ is an error (a diverged model).
pub fn act_on_slots<R: AsRef<[f32]>>(
    rows: impl IntoIterator<Item = R>,
    mode: ActMode,
    rng: &mut Rng,
) -> Result<Vec<Acted<usize>>, PolicyError> {
    rows.into_iter()
        .map(|logp| {
            let logp = logp.as_ref();
            if logp.iter().any(|l| l.is_nan() || *l == f32::INFINITY) {
                return Err(PolicyError::NonFinite {
                    what: "action log-probabilities",
                });
            }
            let slot = match mode {
                ActMode::Greedy => logp
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(slot, _)| slot),
                ActMode::Sample { .. } => sample_slot(logp, rng),
            };
            Ok(Acted {
                decision: slot,
                parts: vec![logp[slot]],
            })
        })
        .collect()
}

/// A slot drawn from `rng` with probability `exp(logp)` (for a family over
/// action slots acting with [`crate::family::ActMode::Sample`]).
pub fn sample_slot(logp: &[f32], rng: &mut Rng) -> usize {
    let probs: Vec<f32> = logp.iter().map(|l| l.exp()).collect();
    let total: f32 = probs.iter().sum();
    let mut u = rng.random_range(0.0..total.max(f32::MIN_POSITIVE));
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(probs.len() - 1)
}
