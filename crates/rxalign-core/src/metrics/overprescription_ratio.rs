use super::{Mean, Metric, MetricInput};

/// `#Med / mean |G|`: above 1 the recommender prescribes more than the
/// clinicians did.
#[derive(Debug, Default)]
pub struct OverprescriptionRatioMetric {
    predicted: Mean,
    truth: Mean,
}

impl Metric for OverprescriptionRatioMetric {
    fn name(&self) -> &'static str {
        "overprescription_ratio"
    }
    fn definition(&self) -> &'static str {
        "#Med / mean |G| over the same visits (1 = as many drugs as prescribed)"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        self.predicted.push(input.predicted.len() as f64);
        self.truth.push(input.truth.len() as f64);
    }
    fn value(&self) -> Option<f64> {
        let g = self.truth.value()?;
        (g > 0.0).then(|| self.predicted.value().unwrap_or(0.0) / g)
    }
}
