use rxalign_core::{Cohort, DrugSet, Prediction};
use serde::{Deserialize, Serialize};

use super::Recommender;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MostFrequentConfig {
    /// List size; by default the training mean list size, rounded.
    #[serde(default)]
    pub k: Option<usize>,
}

/// The same `k` most frequent training drugs for every visit; the score of a
/// drug is its share of training visits.
#[derive(Clone, Debug)]
pub struct MostFrequentRecommender {
    config: MostFrequentConfig,
    frequency: Vec<f64>,
    list: Option<DrugSet>,
}

impl MostFrequentRecommender {
    pub fn new(config: MostFrequentConfig) -> Self {
        Self {
            config,
            frequency: Vec::new(),
            list: None,
        }
    }
}

impl Recommender for MostFrequentRecommender {
    fn name(&self) -> &str {
        "most_frequent"
    }

    fn fit(&mut self, cohort: &Cohort, train: &[usize]) {
        let n = cohort.drug_count();
        let mut counts = vec![0u32; n];
        let mut total = 0usize;
        for &v in train {
            for d in cohort.visits[v].drugs.iter() {
                counts[d] += 1;
                total += 1;
            }
        }
        let visits = train.len().max(1) as f64;
        self.frequency = counts.iter().map(|&c| f64::from(c) / visits).collect();
        let k = self
            .config
            .k
            .unwrap_or((total as f64 / visits).round() as usize)
            .min(n);
        let mut order: Vec<usize> = (0..n).collect();
        // Most frequent first; ties by drug index, so the list is stable.
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        self.list = Some(DrugSet::from_indices(n, order.into_iter().take(k)));
    }

    fn predict(&self, cohort: &Cohort, _visit: usize) -> Prediction {
        let drugs = self
            .list
            .clone()
            .unwrap_or_else(|| DrugSet::empty(cohort.drug_count()));
        Prediction {
            drugs,
            scores: Some(self.frequency.clone()),
        }
    }
}
