//! The reward term `f_beta`.

use rxalign_env::RewardTerm;
use rxalign_env::reward::ListContext;
use serde::Deserialize;

/// The F-beta score of the list against the ground truth:
/// `(1 + β²)·|S∩G| / (β²·|G| + |S|)`, 0 when the list shares no drug with
/// the truth.
#[derive(Debug)]
pub struct FBetaReward {
    beta: f64,
    definition: String,
}

impl FBetaReward {
    /// The term for `beta`, which must be positive and finite.
    pub fn new(beta: f64) -> Result<Self, String> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(format!("`f_beta`: beta must be positive, not {beta}"));
        }
        Ok(Self {
            beta,
            definition: format!("(1 + β²)|S∩G| / (β²|G| + |S|), β = {beta}"),
        })
    }
}

impl RewardTerm for FBetaReward {
    fn name(&self) -> &str {
        "f_beta"
    }

    fn definition(&self) -> &str {
        &self.definition
    }

    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let b2 = self.beta * self.beta;
        let hits = f64::from(ctx.stats.hits);
        if hits == 0.0 {
            return 0.0;
        }
        (1.0 + b2) * hits / (b2 * f64::from(ctx.stats.truth_size) + f64::from(ctx.stats.size))
    }
}

/// The F-beta score of the list: below β = 1 a wrong drug costs more than a
/// missing one.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FBetaConfig {
    /// The term's weight in the list potential (read by the reward, as for
    /// every term).
    pub weight: f64,
    /// β: recall counts β times as much as precision.
    #[serde(default = "default_beta")]
    pub beta: f64,
}

fn default_beta() -> f64 {
    0.5
}

#[cfg(test)]
mod tests {
    use rxalign_core::{DdiGraph, DrugSet};
    use rxalign_env::ListStats;

    use super::*;

    #[test]
    fn beta_one_is_f1_and_a_small_beta_weighs_precision() {
        let list = DrugSet::from_indices(6, [0, 1, 2, 3]);
        let truth = DrugSet::from_indices(6, [0, 1]);
        let ddi = DdiGraph::empty(6, "none");
        let stats = ListStats::of(&list, &truth, &ddi);
        let ctx = ListContext {
            stats: &stats,
            list: &list,
            truth: &truth,
            ddi: &ddi,
        };
        // Precision 1/2, recall 1: F1 = 2/3; F0.5 = 1.25·2 / (0.25·2 + 4) = 5/9.
        let f1 = FBetaReward::new(1.0).unwrap().potential(&ctx);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12, "{f1}");
        let f05 = FBetaReward::new(0.5).unwrap().potential(&ctx);
        assert!((f05 - 5.0 / 9.0).abs() < 1e-12, "{f05}");
        assert!(FBetaReward::new(0.0).is_err());
    }
}
