//! The predictions file: what any recommender writes and `rxalign eval` scores.
//!
//! JSONL, one visit per line: `{"visit_id": "...", "drugs": ["code", ...],
//! "scores": {"code": 0.93, ...}}`, with `scores` optional. Drugs missing from
//! `scores` rank below every scored drug. PRAUC is defined only when every
//! scored line has `scores` (it is never averaged over a subset), and
//! [`Predictions::coverage`] says how much of a set of visits a file covers.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::{MetricInput, MetricReport, evaluate};
use crate::{Cohort, CoreError, DrugSet, Vocab};

/// One line of a predictions file, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionRecord {
    pub visit_id: String,
    pub drugs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<BTreeMap<String, f64>>,
}

/// A prediction resolved against a cohort's drug vocabulary.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub drugs: DrugSet,
    /// One score per drug index; unscored drugs hold `f64::NEG_INFINITY`.
    pub scores: Option<Vec<f64>>,
}

impl Prediction {
    /// The record of this prediction for a visit.
    pub fn to_record(&self, visit_id: &str, vocab: &Vocab) -> PredictionRecord {
        PredictionRecord {
            visit_id: visit_id.to_string(),
            drugs: self.drugs.iter().map(|d| vocab.code(d).to_string()).collect(),
            scores: self.scores.as_ref().map(|s| {
                s.iter()
                    .enumerate()
                    .filter(|(_, x)| x.is_finite())
                    .map(|(d, &x)| (vocab.code(d).to_string(), x))
                    .collect()
            }),
        }
    }
}

/// The predictions of a file, keyed by visit index in the cohort.
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    pub by_visit: HashMap<usize, Prediction>,
}

/// Lists without scores, by visit index (a decoded policy's, the ground
/// truth as a method).
impl FromIterator<(usize, DrugSet)> for Predictions {
    fn from_iter<I: IntoIterator<Item = (usize, DrugSet)>>(lists: I) -> Self {
        Self {
            by_visit: lists
                .into_iter()
                .map(|(v, drugs)| (v, Prediction { drugs, scores: None }))
                .collect(),
        }
    }
}

impl Predictions {
    /// Reads and resolves a predictions file. Malformed lines, unknown visit
    /// ids, unknown drug codes and repeated visits are errors naming the line.
    pub fn read(path: &Path, cohort: &Cohort) -> Result<Self, CoreError> {
        let text = crate::jsonl::read_text(path)?;
        let mut out = Self::default();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let record: PredictionRecord = crate::jsonl::parse_line(path, n, line)?;
            let visit = cohort.visit_index(&record.visit_id).ok_or_else(|| {
                CoreError::input(
                    path,
                    n,
                    "visit_id",
                    format!("visit `{}` is not in the dataset", record.visit_id),
                )
            })?;
            let resolve = |code: &str, field: &str| {
                cohort.drugs.get(code).ok_or_else(|| {
                    CoreError::input(
                        path,
                        n,
                        field,
                        format!("drug code `{code}` is not in the dataset's drugs.csv"),
                    )
                })
            };
            let mut drugs = DrugSet::empty(cohort.drug_count());
            for code in &record.drugs {
                drugs.insert(resolve(code, "drugs")?);
            }
            let scores = match &record.scores {
                None => None,
                Some(map) => {
                    let mut s = vec![f64::NEG_INFINITY; cohort.drug_count()];
                    for (code, &x) in map {
                        if !x.is_finite() {
                            return Err(CoreError::input(path, n, "scores", "a score must be finite"));
                        }
                        s[resolve(code, "scores")?] = x;
                    }
                    Some(s)
                }
            };
            if out.by_visit.insert(visit, Prediction { drugs, scores }).is_some() {
                return Err(CoreError::input(
                    path,
                    n,
                    "visit_id",
                    format!("visit `{}` is predicted twice", record.visit_id),
                ));
            }
        }
        Ok(out)
    }

    /// How this file covers `scope` (visit indices of `cohort`): which
    /// visits it predicts, which it lacks, which lines have no scores, and
    /// how many of its lines lie outside the scope.
    pub fn coverage(&self, cohort: &Cohort, scope: &[usize]) -> Coverage {
        let in_scope: std::collections::HashSet<usize> = scope.iter().copied().collect();
        let missing_examples = scope
            .iter()
            .filter(|i| !self.by_visit.contains_key(i))
            .take(5)
            .map(|&i| cohort.visits[i].visit_id.clone())
            .collect();
        Coverage {
            expected: in_scope.len(),
            predicted: in_scope.iter().filter(|i| self.by_visit.contains_key(i)).count(),
            without_scores: self
                .by_visit
                .iter()
                .filter(|(i, p)| in_scope.contains(i) && p.scores.is_none())
                .count(),
            outside_scope: self.by_visit.keys().filter(|i| !in_scope.contains(i)).count(),
            missing_examples,
        }
    }

    /// Scores the predicted visits that `keep` accepts (by visit index), in
    /// the cohort's visit order, with every standard metric.
    pub fn evaluate(&self, cohort: &Cohort, keep: impl Fn(usize) -> bool) -> MetricReport {
        let mut visits: Vec<usize> = self.by_visit.keys().copied().filter(|&i| keep(i)).collect();
        visits.sort_unstable();
        evaluate(self.inputs(cohort, &visits))
    }

    /// What the metrics see of `visits` (each predicted).
    fn inputs<'a>(
        &'a self,
        cohort: &'a Cohort,
        visits: &'a [usize],
    ) -> impl Iterator<Item = MetricInput<'a>> {
        visits.iter().map(|i| {
            let p = &self.by_visit[i];
            MetricInput {
                predicted: &p.drugs,
                truth: &cohort.visits[*i].drugs,
                scores: p.scores.as_deref(),
                ddi: &cohort.ddi,
            }
        })
    }

    /// The per-patient means of every standard metric over the predicted
    /// visits that `keep` accepts: each metric computed over each
    /// patient's visits (as over a split), then averaged over the patients
    /// where it is defined; so that a patient with many visits weighs as
    /// much as one with few. Beside [`Self::evaluate`]'s per-visit means.
    pub fn evaluate_per_patient(
        &self,
        cohort: &Cohort,
        keep: impl Fn(usize) -> bool,
    ) -> BTreeMap<String, Option<f64>> {
        let mut by_patient: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in self.by_visit.keys().filter(|&&i| keep(i)) {
            by_patient
                .entry(cohort.visits[i].patient_id.as_str())
                .or_default()
                .push(i);
        }
        let mut sums: BTreeMap<String, (f64, usize)> = crate::metrics::definitions()
            .into_iter()
            .map(|(name, _)| (name, (0.0, 0)))
            .collect();
        for visits in by_patient.values_mut() {
            visits.sort_unstable();
            let report = evaluate(self.inputs(cohort, visits));
            for v in report.values {
                if let (Some(x), Some(sum)) = (v.value, sums.get_mut(&v.name)) {
                    sum.0 += x;
                    sum.1 += 1;
                }
            }
        }
        sums.into_iter()
            .map(|(name, (sum, n))| (name, (n > 0).then(|| sum / n as f64)))
            .collect()
    }

    /// Writes records as JSONL, atomically.
    pub fn write(path: &Path, records: &[PredictionRecord]) -> Result<(), CoreError> {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).expect("a record serialises"));
            text.push('\n');
        }
        crate::run::write_atomic(path, text.as_bytes())
    }
}

/// How a predictions file covers the visits it is scored on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct visits in the scope.
    pub expected: usize,
    /// Visits of the scope that the file predicts.
    pub predicted: usize,
    /// Predicted visits of the scope whose line has no `scores`.
    pub without_scores: usize,
    /// Lines of the file for visits outside the scope (not scored).
    pub outside_scope: usize,
    /// Ids of the first few visits of the scope that the file lacks.
    pub missing_examples: Vec<String>,
}

impl Coverage {
    /// Every visit of the scope is predicted.
    pub fn is_complete(&self) -> bool {
        self.predicted == self.expected
    }

    /// Visits of the scope the file lacks.
    pub fn missing(&self) -> usize {
        self.expected - self.predicted
    }

    /// `predicted of expected visits`, with the missing ones named.
    pub fn describe(&self) -> String {
        let mut s = format!("covers {} of {} visits", self.predicted, self.expected);
        if !self.is_complete() {
            s.push_str(&format!(
                " ({} missing, for example {})",
                self.missing(),
                self.missing_examples
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s
    }

    /// How PRAUC treats this file's lines, when some lack scores.
    pub fn prauc_note(&self) -> Option<String> {
        (self.without_scores > 0).then(|| {
            format!(
                "prauc is n/a: {} of the {} scored lines have no `scores`, and PRAUC is only reported when every line ranks the drugs",
                self.without_scores, self.predicted
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DdiGraph, Visit};

    /// Issue #24: the per-patient mean averages each patient's visits
    /// first; the per-visit mean weighs every visit alike.
    #[test]
    fn per_patient_means_average_each_patients_visits_first() {
        let mut drugs = Vocab::new();
        drugs.insert("A", "a");
        drugs.insert("B", "b");
        let both = DrugSet::from_indices(2, [0, 1]);
        // Patient p holds three visits, all predicted exactly (Jaccard 1);
        // patient q one visit predicted half right (Jaccard 1/2).
        let visits = vec![
            Visit::new("p", "p1", both.clone()),
            Visit::new("p", "p2", both.clone()),
            Visit::new("p", "p3", both.clone()),
            Visit::new("q", "q1", both.clone()),
        ];
        let cohort = Cohort::new(
            "t",
            drugs,
            Vocab::new(),
            Vocab::new(),
            visits,
            DdiGraph::empty(2, "none"),
        )
        .unwrap();
        let predictions: Predictions = [
            (0, both.clone()),
            (1, both.clone()),
            (2, both.clone()),
            (3, DrugSet::from_indices(2, [0])),
        ]
        .into_iter()
        .collect();
        let per_visit = predictions.evaluate(&cohort, |_| true).get("jaccard").unwrap();
        let per_patient = predictions.evaluate_per_patient(&cohort, |_| true)["jaccard"].unwrap();
        assert!((per_visit - (3.0 + 0.5) / 4.0).abs() < 1e-12, "{per_visit}");
        assert!((per_patient - (1.0 + 0.5) / 2.0).abs() < 1e-12, "{per_patient}");
        // PRAUC needs scores: undefined for every patient, so undefined.
        assert_eq!(predictions.evaluate_per_patient(&cohort, |_| true)["prauc"], None);
        assert_eq!(
            predictions.evaluate_per_patient(&cohort, |i| i == 3)["jaccard"],
            Some(0.5)
        );
    }
}
