use super::{Mean, Metric, MetricInput};

#[derive(Debug, Default)]
pub struct GtMedCountMetric(Mean);

impl Metric for GtMedCountMetric {
    fn name(&self) -> &'static str {
        "gt_med_count"
    }
    fn definition(&self) -> &'static str {
        "ground truth's #Med: mean |G| over the same visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(input.truth.len() as f64);
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
