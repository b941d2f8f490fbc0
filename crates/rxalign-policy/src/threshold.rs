//! Lists from per-drug scores: the drugs at or above a threshold, and the
//! one threshold picker of every scoring recommender (the classifier and
//! LAMO): the threshold of best validation Jaccard on a grid.

use rxalign_core::metrics::{MetricInput, MetricReport, evaluate};
use rxalign_core::{Cohort, DrugSet};

/// The drugs of a score row at or above `threshold`.
pub fn above(scores: &[f32], threshold: f32) -> DrugSet {
    DrugSet::from_indices(
        scores.len(),
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| **s >= threshold)
            .map(|(d, _)| d),
    )
}

/// The metrics of the lists `above(scores, threshold)` of `visits` (one
/// score row per visit, in order), the scores handed on for the ranking
/// metrics.
pub fn report(cohort: &Cohort, visits: &[usize], scores: &[Vec<f32>], threshold: f32) -> MetricReport {
    let lists: Vec<DrugSet> = scores.iter().map(|s| above(s, threshold)).collect();
    let wide: Vec<Vec<f64>> = scores
        .iter()
        .map(|s| s.iter().map(|&x| f64::from(x)).collect())
        .collect();
    evaluate(
        visits
            .iter()
            .zip(&lists)
            .zip(&wide)
            .map(|((&v, list), s)| MetricInput {
                predicted: list,
                truth: &cohort.visits[v].drugs,
                scores: Some(s),
                ddi: &cohort.ddi,
            }),
    )
}

/// The threshold of best mean Jaccard over `visits` among `step`, `2 step`,
/// ... below 1 (the first of equals: `step` itself when no visit is given,
/// since every threshold then scores alike).
pub fn pick(cohort: &Cohort, visits: &[usize], scores: &[Vec<f32>], step: f32) -> f32 {
    let mut threshold = step;
    let mut best = f64::NEG_INFINITY;
    let mut t = step;
    while t < 1.0 - step / 2.0 {
        let j = report(cohort, visits, scores, t).get("jaccard").unwrap_or(0.0);
        if j > best {
            best = j;
            threshold = t;
        }
        t += step;
    }
    threshold
}
