//! The `headroom` stage: the exact references of the synthetic clinic's
//! `icu` preset, under the run's own reward.

use std::collections::BTreeMap;

use rxalign_core::posterior::ListPosterior;
use rxalign_core::{Prediction, Predictions, SplitName};
use rxalign_env::headroom::{best_list, check_reward, expected_potential, threshold_list};
use serde::{Deserialize, Serialize};

use super::{Contract, PerVisitMetrics, RunContext, Stage};
use crate::ExperimentError;

/// The method of the best drug-by-drug decision from exact marginals.
pub const PER_DRUG: &str = "posterior_per_drug";
/// The method of the best whole list under the exact joint posterior.
pub const BEST_LIST: &str = "posterior_best_list";
/// The per-visit metric both record: the list's expected potential under
/// the exact posterior.
pub const EXPECTED_POTENTIAL: &str = "expected_potential";

/// The per-visit metric of `posterior_per_drug`: the threshold chosen on
/// the validation visits (the same for every visit).
pub const THRESHOLD: &str = "threshold";

/// Settings of the `headroom` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadroomConfig {
    /// The best-list search adds only drugs whose exact marginal is at least
    /// this (0: every drug).
    #[serde(default = "HeadroomConfig::default_floor")]
    pub floor: f64,
}

impl HeadroomConfig {
    fn default_floor() -> f64 {
        0.02
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.floor) {
            return Err(format!("floor is {}; it must lie in [0, 1)", self.floor));
        }
        Ok(())
    }
}

/// Records two references computed from the `icu` preset's generative
/// model, for every visit of the evaluation splits (the best list: for the
/// test visits only, its search being the costly part):
/// - `posterior_per_drug`: every drug whose exact marginal reaches one
///   threshold, the threshold (0.05 to 0.95 by 0.05) that maximises the mean
///   expected potential of the run's reward on the validation visits;
/// - `posterior_best_list`: the list maximising the expected potential under
///   the exact joint posterior ([`rxalign_env::headroom::best_list`]).
///
/// Each is scored on the ground truth like every method; the per-visit
/// metric `expected_potential` is its expectation under the posterior. Put
/// it after `start_from` so that its outcome reward counts from the same
/// start lists as the editors'.
#[derive(Debug)]
pub struct HeadroomStage(pub HeadroomConfig);

impl Stage for HeadroomStage {
    fn kind(&self) -> &str {
        "headroom"
    }

    fn method(&self) -> &str {
        BEST_LIST
    }

    fn contract(&self) -> Contract {
        Contract {
            records: Some(vec![PER_DRUG.to_string(), BEST_LIST.to_string()]),
            ..Contract::default()
        }
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        check_reward(ctx.reward).map_err(|e| ExperimentError::Invalid(format!("`headroom`: {e}")))?;
        let data = ctx.data;
        let Some(icu) = data.clinic.as_ref().and_then(|c| c.icu.as_ref()) else {
            return Err(ExperimentError::Invalid(
                "the `headroom` stage needs a generator with exact posteriors: data (kind: \"synthetic\", preset: \"icu\")"
                    .into(),
            ));
        };
        let ddi = &data.cohort.ddi;
        let reward = ctx.reward;
        let mut visits: Vec<usize> = Vec::new();
        for name in ctx.eval.split_names()? {
            visits.extend(ctx.split.indices(name, data.cohort.visits.len()));
        }
        let val = ctx.split.indices(SplitName::Val, data.cohort.visits.len());
        visits.extend(&val);
        visits.sort_unstable();
        visits.dedup();
        // Each visit's posterior, computed once.
        let posteriors: std::collections::HashMap<usize, _> = visits
            .iter()
            .map(|&i| (i, icu.world.posterior(&icu.stays[i].1)))
            .collect();
        let thresholds: Vec<f64> = (1..20).map(|k| f64::from(k) * 0.05).collect();
        // The threshold is chosen on the validation visits only.
        let mut on_val = vec![0.0; thresholds.len()];
        for i in &val {
            let post = &posteriors[i];
            for (sum, &t) in on_val.iter_mut().zip(&thresholds) {
                *sum += expected_potential(reward, post, &threshold_list(post.marginals(), t), ddi);
            }
        }
        let best_t = (0..thresholds.len()).fold(0, |b, k| if on_val[k] > on_val[b] { k } else { b });
        let threshold = thresholds[best_t];
        let mut per_drug = Predictions::default();
        let mut best = Predictions::default();
        let mut per_drug_value = PerVisitMetrics::new();
        let mut best_value = PerVisitMetrics::new();
        let test: std::collections::HashSet<usize> = ctx
            .split
            .indices(SplitName::Test, data.cohort.visits.len())
            .into_iter()
            .collect();
        let total = test.len() as u64;
        let mut searched = 0;
        for &i in &visits {
            let post = &posteriors[&i];
            let marginals = post.marginals();
            let list = threshold_list(marginals, threshold);
            let value = expected_potential(reward, post, &list, ddi);
            per_drug_value.insert(
                i,
                BTreeMap::from([
                    (EXPECTED_POTENTIAL.to_string(), value),
                    (THRESHOLD.to_string(), threshold),
                ]),
            );
            per_drug.by_visit.insert(
                i,
                Prediction {
                    drugs: list,
                    scores: Some(marginals.to_vec()),
                },
            );
            // The search is the costly part: the test visits only.
            if !test.contains(&i) {
                continue;
            }
            let (list, value) = best_list(reward, post, ddi, self.0.floor);
            best_value.insert(i, BTreeMap::from([(EXPECTED_POTENTIAL.to_string(), value)]));
            best.by_visit.insert(
                i,
                Prediction {
                    drugs: list,
                    scores: None,
                },
            );
            searched += 1;
            if searched % 32 == 0 || searched == total {
                ctx.progress(searched, total)?;
            }
        }
        ctx.record_method_with(PER_DRUG, 0, &per_drug, None, &per_drug_value)?;
        ctx.record_method_with(BEST_LIST, 0, &best, None, &best_value)?;
        Ok(())
    }
}
