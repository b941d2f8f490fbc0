use super::{Metric, MetricInput};

/// SafeDrug's and PyHealth's DDI rate: interacting pairs summed over visits
/// divided by all pairs summed over visits. Undefined (`None`, shown as
/// n/a) where the DDI graph has no pairs (a dataset without `ddi.csv`).
#[derive(Debug, Default)]
pub struct DdiRatePooledMetric {
    interacting: u64,
    pairs: u64,
    visits: usize,
    graph: bool,
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
        self.graph |= input.ddi.edge_count() > 0;
    }
    fn value(&self) -> Option<f64> {
        if self.visits == 0 || !self.graph {
            None
        } else if self.pairs == 0 {
            Some(0.0)
        } else {
            Some(self.interacting as f64 / self.pairs as f64)
        }
    }
}
