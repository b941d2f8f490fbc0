use super::{Metric, MetricInput};

/// SafeDrug's and PyHealth's DDI rate: interacting pairs summed over visits
/// divided by all pairs summed over visits.
#[derive(Debug, Default)]
pub struct DdiRatePooledMetric {
    interacting: u64,
    pairs: u64,
    visits: usize,
}

impl Metric for DdiRatePooledMetric {
    fn name(&self) -> &'static str {
        "ddi_rate_pooled"
    }
    fn definition(&self) -> &'static str {
        "pooled DDI rate: interacting pairs / all pairs, summed over all visits (SafeDrug, PyHealth)"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        let n = input.predicted.len() as u64;
        self.pairs += n * n.saturating_sub(1) / 2;
        self.interacting += input.ddi.interacting_pairs(input.predicted) as u64;
        self.visits += 1;
    }
    fn value(&self) -> Option<f64> {
        if self.visits == 0 {
            None
        } else if self.pairs == 0 {
            Some(0.0)
        } else {
            Some(self.interacting as f64 / self.pairs as f64)
        }
    }
}
