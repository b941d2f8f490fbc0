use rxalign_core::{Cohort, DrugSet, Prediction};
use serde::{Deserialize, Serialize};

use super::Recommender;
use super::counts::DiagnosisDrugCounts;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EverythingIndicatedConfig {
    /// A drug counts as indicated by a diagnosis when it was given in at
    /// least this share of the training visits coded with it (filters the
    /// rare co-occurrences that are noise)...
    #[serde(default = "default_support")]
    pub min_support: f64,
    /// ...and when it is at least this many times more frequent with the
    /// diagnosis than overall: `P(drug | dx) / P(drug)` (filters the drugs of
    /// other conditions that patients with `dx` happen to have).
    #[serde(default = "default_lift")]
    pub min_lift: f64,
}

fn default_support() -> f64 {
    0.04
}

fn default_lift() -> f64 {
    3.0
}

impl Default for EverythingIndicatedConfig {
    fn default() -> Self {
        Self {
            min_support: default_support(),
            min_lift: default_lift(),
        }
    }
}

/// Every drug indicated by any of the visit's diagnoses, as seen in
/// training (given with the diagnosis often enough and clearly more often
/// than without it): first-line drugs, alternatives and add-ons all at once. It shows
/// what prescribing without judgement does: lists far above the ground
/// truth's size and more interacting pairs.
#[derive(Clone, Debug)]
pub struct EverythingIndicatedRecommender {
    config: EverythingIndicatedConfig,
    counts: DiagnosisDrugCounts,
}

impl EverythingIndicatedRecommender {
    pub fn new(config: EverythingIndicatedConfig) -> Self {
        Self {
            config,
            counts: DiagnosisDrugCounts::default(),
        }
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
        let mut drugs = DrugSet::empty(cohort.drug_count());
        let mut scores = vec![0.0; cohort.drug_count()];
        self.counts.each_conditional(cohort, visit, |d, p| {
            scores[d] = f64::max(scores[d], p);
            let base = self.counts.base_rate(d);
            if p > 0.0 && p >= self.config.min_support && p >= self.config.min_lift * base {
                drugs.insert(d);
            }
        });
        Prediction {
            drugs,
            scores: Some(scores),
        }
    }
}
