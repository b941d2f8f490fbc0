use super::{Mean, Metric, MetricInput};
use crate::DrugSet;

/// `|P ∩ G| / |G|`, 0 when `G` is empty.
pub fn recall(predicted: &DrugSet, truth: &DrugSet) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    predicted.intersection_len(truth) as f64 / truth.len() as f64
}

#[derive(Debug, Default)]
pub struct RecallMetric(Mean);

impl Metric for RecallMetric {
    fn name(&self) -> &'static str {
        "recall"
    }
    fn definition(&self) -> &'static str {
        "per-visit |P∩G|/|G| (0 if G empty), averaged over visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(recall(input.predicted, input.truth));
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
