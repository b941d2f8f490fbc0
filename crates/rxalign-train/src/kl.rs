//! KL divergences to the frozen reference policy, per decision part.
//!
//! - exact: `Σ_a π(a) (log π(a) − log π_ref(a))` over every choice, where
//!   the family can enumerate its choices (the list policy's actions);
//! - k3: `exp(r) − r − 1` with `r = log π_ref(a) − log π(a)` at the sampled
//!   part only, the per-sample unbiased estimator of GRPO's paper (what a
//!   language model over 50,000 tokens can afford).

use burn::prelude::*;
use rxalign_policy::family::{LOG_FLOOR, masked_exp};
use serde::{Deserialize, Serialize};

/// Which KL estimator a GRPO stage uses in its loss; written as a string
/// (`"exact"`, `"k3"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum KlEstimator {
    Exact,
    K3,
}

impl TryFrom<String> for KlEstimator {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "exact" => Ok(Self::Exact),
            "k3" => Ok(Self::K3),
            other => Err(format!("unknown KL estimator `{other}`; known: exact, k3")),
        }
    }
}

impl From<KlEstimator> for String {
    fn from(k: KlEstimator) -> String {
        match k {
            KlEstimator::Exact => "exact",
            KlEstimator::K3 => "k3",
        }
        .to_string()
    }
}

/// The exact KL of every part.
///
/// # Shapes
/// - `logp`, `reference`: `[batch, parts, choices]`
/// - output: `[batch, parts]`
pub fn exact<B: Backend>(logp: Tensor<B, 3>, reference: Tensor<B, 3>) -> Tensor<B, 2> {
    let [n, parts, _] = logp.dims();
    let p = masked_exp(logp.clone());
    // Masked choices hold p = 0; their log terms are kept finite by the
    // clamp so that 0 · (−∞) never appears.
    (p * (logp.clamp_min(LOG_FLOOR) - reference.clamp_min(LOG_FLOOR)))
        .sum_dim(2)
        .reshape([n, parts])
}

/// The exact KL of every part and the policy's exact entropy, from one
/// `exp` of `logp` (each alone: [`exact`], [`entropy`], the same values).
///
/// # Shapes
/// - `logp`, `reference`: `[batch, parts, choices]`
/// - output: `(kl, entropy)`, each `[batch, parts]`
pub fn exact_and_entropy<B: Backend>(
    logp: Tensor<B, 3>,
    reference: Tensor<B, 3>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [n, parts, _] = logp.dims();
    let p = masked_exp(logp.clone());
    let logp = logp.clamp_min(LOG_FLOOR);
    let kl = (p.clone() * (logp.clone() - reference.clamp_min(LOG_FLOOR)))
        .sum_dim(2)
        .reshape([n, parts]);
    let entropy = (p * logp).sum_dim(2).reshape([n, parts]).neg();
    (kl, entropy)
}

/// The k3 estimate of every sampled part.
///
/// # Shapes
/// - `logp`, `reference`: `[batch, parts]`, the sampled parts' log-probabilities
/// - output: `[batch, parts]`
pub fn k3<B: Backend>(logp: Tensor<B, 2>, reference: Tensor<B, 2>) -> Tensor<B, 2> {
    let r = reference - logp;
    r.clone().exp() - r - 1.0
}

/// The exact entropy of every part.
///
/// # Shapes
/// - `logp`: `[batch, parts, choices]`
/// - output: `[batch, parts]`
pub fn entropy<B: Backend>(logp: Tensor<B, 3>) -> Tensor<B, 2> {
    let [n, parts, _] = logp.dims();
    rxalign_policy::family::entropy(logp, 2).reshape([n, parts])
}
