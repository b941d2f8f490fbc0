use super::{Mean, Metric, MetricInput};
use crate::DrugSet;

/// Average precision of a ranking by `scores` against `truth`, as
/// scikit-learn's `average_precision_score` computes it: drugs with equal
/// scores form one threshold, and `AP = Σ_k (R_k − R_{k−1}) · P_k` over the
/// thresholds from the highest score down. 0 when `truth` is empty.
pub fn average_precision(scores: &[f64], truth: &DrugSet) -> f64 {
    let positives = truth.len();
    if positives == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let threshold = scores[order[i]];
        while i < order.len() && scores[order[i]].total_cmp(&threshold).is_eq() {
            seen += 1;
            tp += usize::from(truth.contains(order[i]));
            i += 1;
        }
        let r = tp as f64 / positives as f64;
        ap += (r - last_recall) * (tp as f64 / seen as f64);
        last_recall = r;
    }
    ap
}

/// Undefined (`None`) as soon as one visit has no scores, so that a report
/// never averages over a subset silently.
#[derive(Debug, Default)]
pub struct PraucMetric {
    mean: Mean,
    missing: bool,
}

impl Metric for PraucMetric {
    fn name(&self) -> &'static str {
        "prauc"
    }
    fn definition(&self) -> &'static str {
        "per-visit average precision of the drug scores (sklearn AP, ties grouped), averaged; n/a without scores"
    }
    fn update(&mut self, input: &MetricInput<'_>) {
        match input.scores {
            Some(s) => self.mean.push(average_precision(s, input.truth)),
            None => self.missing = true,
        }
    }
    fn value(&self) -> Option<f64> {
        if self.missing { None } else { self.mean.value() }
    }
}
