use super::{Mean, Metric, MetricInput};
use crate::DrugSet;

/// `|P ∩ G| / |P|`, 0 when `P` is empty.
pub fn precision(predicted: &DrugSet, truth: &DrugSet) -> f64 {
    if predicted.is_empty() {
        return 0.0;
    }
    predicted.intersection_len(truth) as f64 / predicted.len() as f64
}

#[derive(Debug, Default)]
pub struct PrecisionMetric(Mean);

impl Metric for PrecisionMetric {
    fn name(&self) -> &'static str {
        "precision"
    }
    fn definition(&self) -> &'static str {
        "per-visit |P∩G|/|P| (0 if P empty), averaged over visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(precision(input.predicted, input.truth));
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
