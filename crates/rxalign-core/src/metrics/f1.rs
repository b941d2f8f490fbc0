use super::{Mean, Metric, MetricInput, precision, recall};
use crate::DrugSet;

/// `2PR / (P + R)` of the visit's precision and recall, 0 when both are 0.
pub fn f1(predicted: &DrugSet, truth: &DrugSet) -> f64 {
    let p = precision(predicted, truth);
    let r = recall(predicted, truth);
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

#[derive(Debug, Default)]
pub struct F1Metric(Mean);

impl Metric for F1Metric {
    fn name(&self) -> &'static str {
        "f1"
    }
    fn definition(&self) -> &'static str {
        "per-visit 2PR/(P+R) (0 if P+R=0), averaged over visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(f1(input.predicted, input.truth));
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
