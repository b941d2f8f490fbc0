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
        evaluate(visits.iter().map(|i| {
            let p = &self.by_visit[i];
            MetricInput {
                predicted: &p.drugs,
                truth: &cohort.visits[*i].drugs,
                scores: p.scores.as_deref(),
                ddi: &cohort.ddi,
            }
        }))
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
