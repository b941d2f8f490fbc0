use super::{Mean, Metric, MetricInput};

#[derive(Debug, Default)]
pub struct MedCountMetric(Mean);

impl Metric for MedCountMetric {
    fn name(&self) -> &'static str {
        "med_count"
    }
    fn definition(&self) -> &'static str {
        "#Med: mean |P| over visits"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.0.push(input.predicted.len() as f64);
    }
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}
