use rxalign_core::{Cohort, DrugSet, Prediction};
use serde::{Deserialize, Serialize};

use super::Recommender;
use super::counts::DiagnosisDrugCounts;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EverythingIndicatedConfig {
    /// A drug counts as indicated by a diagnosis when it was given in at
    /// least this share of the training visits coded with it (filters the
    /// rare co-occurrences that are noise).
    #[serde(default = "default_support")]
    pub min_support: f64,
}

fn default_support() -> f64 {
    0.05
}

impl Default for EverythingIndicatedConfig {
    fn default() -> Self {
        Self { min_support: default_support() }
    }
}

/// Every drug indicated by any of the visit's diagnoses, as seen in
/// training: first-line drugs, alternatives and add-ons all at once. It shows
/// what prescribing without judgement does: lists far above the ground
/// truth's size and more interacting pairs.
#[derive(Clone, Debug)]
pub struct EverythingIndicatedRecommender {
    config: EverythingIndicatedConfig,
    counts: DiagnosisDrugCounts,
}

impl EverythingIndicatedRecommender {
    pub fn new(config: EverythingIndicatedConfig) -> Self {
        Self { config, counts: DiagnosisDrugCounts::default() }
    }
}

impl Recommender for EverythingIndicatedRecommender {
    fn name(&self) -> &str {
        "everything_indicated"
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
                .filter(|(_, s)| **s > 0.0 && **s >= self.config.min_support)
                .map(|(d, _)| d),
        );
        Prediction { drugs, scores: Some(scores) }
    }
}
