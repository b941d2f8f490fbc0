use super::{Mean, Metric, MetricInput};
use crate::DrugSet;

/// `|P ∩ G| / |P ∪ G|`, 0 when `P` or `G` is empty.
pub fn jaccard(predicted: &DrugSet, truth: &DrugSet) -> f64 {
    if predicted.is_empty() || truth.is_empty() {
        return 0.0;
    }
    let inter = predicted.intersection_len(truth);
    inter as f64 / (predicted.len() + truth.len() - inter) as f64
}

#[derive(Debug, Default)]
pub struct JaccardMetric(Mean);

impl Metric for JaccardMetric {
    fn name(&self) -> &'static str {
        "jaccard"
    }
    fn definition(&self) -> &'static str {
        "per-visit |P∩G|/|P∪G| (0 if P or G empty), averaged over visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(jaccard(input.predicted, input.truth));
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
