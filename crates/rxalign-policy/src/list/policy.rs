//! The policy trait: what every list policy gives for a batch of states,
//! whatever network is behind it. Training (SFT, GRPO) and decoding use
//! only this.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng as _;
use rxalign_core::Rng;

use super::StateBatch;

/// Log-probabilities below this are treated as 0 probability in entropy
/// and KL terms (masked actions), so that `0 · (−∞)` never appears.
pub const LOG_FLOOR: f32 = -60.0;

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

    /// One sampled action slot per state at `temperature`, with its
    /// log-probability, drawn from `rng`.
    fn sample(&self, state: StateBatch<B>, temperature: f64, rng: &mut Rng) -> Vec<(usize, f32)> {
        rows(self.log_probs(state, temperature))
            .into_iter()
            .map(|logp| {
                let slot = sample_slot(&logp, rng);
                (slot, logp[slot])
            })
            .collect()
    }

    /// The most probable action slot of each state, with its probability.
    fn greedy(&self, state: StateBatch<B>) -> Vec<(usize, f32)> {
        rows(self.log_probs(state, 1.0))
            .into_iter()
            .map(|logp| {
                let (slot, &best) = logp
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .expect("actions exist");
                (slot, best.exp())
            })
            .collect()
    }
}

/// The rows of a `[batch, actions]` tensor.
fn rows<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, width] = t.dims();
    let values: Vec<f32> = t.into_data().convert::<f32>().to_vec().expect("float values");
    values.chunks(width.max(1)).map(<[f32]>::to_vec).collect()
}

/// A slot drawn with probability `exp(logp)`.
fn sample_slot(logp: &[f32], rng: &mut Rng) -> usize {
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
