use rxalign_core::{Cohort, DrugSet, Prediction};
use serde::{Deserialize, Serialize};

use super::Recommender;
use super::counts::DiagnosisDrugCounts;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooccurrenceConfig {
    /// A drug is recommended when `P(drug | diagnosis)` reaches this for one
    /// of the visit's diagnoses.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.5
}

impl Default for CooccurrenceConfig {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
        }
    }
}

/// Drugs that usually go with the visit's diagnoses: the score of a drug is
/// the largest `P(drug | diagnosis)` over the visit's diagnoses in training,
/// and the list holds the drugs scoring at least `threshold`.
#[derive(Clone, Debug)]
pub struct CooccurrenceRecommender {
    config: CooccurrenceConfig,
    counts: DiagnosisDrugCounts,
}

impl CooccurrenceRecommender {
    pub fn new(config: CooccurrenceConfig) -> Self {
        Self {
            config,
            counts: DiagnosisDrugCounts::default(),
        }
    }
}

impl Recommender for CooccurrenceRecommender {
    fn name(&self) -> &str {
        "cooccurrence"
    }

    fn fit(&mut self, cohort: &Cohort, train: &[usize]) {
        self.counts = DiagnosisDrugCounts::fit(cohort, train);
    }

    fn predict(&self, cohort: &Cohort, visit: usize) -> Prediction {
        let scores = self.counts.max_conditional(cohort, visit);
        let drugs = DrugSet::from_indices(
            cohort.drug_count(),
            scores
                .iter()
                .enumerate()
                .filter(|(_, s)| **s >= self.config.threshold)
                .map(|(d, _)| d),
        );
        Prediction {
            drugs,
            scores: Some(scores),
        }
    }
}
