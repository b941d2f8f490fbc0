use super::{Mean, Metric, MetricInput};
use crate::{DdiGraph, DrugSet};

/// Interacting pairs over all pairs in `P`, 0 below two drugs.
pub fn ddi_rate(predicted: &DrugSet, ddi: &DdiGraph) -> f64 {
    let n = predicted.len();
    if n < 2 {
        return 0.0;
    }
    ddi.interacting_pairs(predicted) as f64 / (n * (n - 1) / 2) as f64
}

/// Undefined (`None`, shown as n/a) where the DDI graph has no pairs (a
/// dataset without `ddi.csv`): a rate of 0 would look measured.
#[derive(Debug, Default)]
pub struct DdiRateMetric(Mean, bool);

impl Metric for DdiRateMetric {
    fn name(&self) -> &'static str {
        "ddi_rate"
    }
    fn definition(&self) -> &'static str {
        "per-visit DDI rate: interacting pairs / all pairs in P (0 below 2 drugs), averaged over visits (FLAME)"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(ddi_rate(input.predicted, input.ddi));
        self.1 |= input.ddi.edge_count() > 0;
    }
    fn value(&self) -> Option<f64> {
        self.0.value().filter(|_| self.1)
    }
}
