//! Visits as bags of feature indices: the codes are a few indices each, so
//! the model looks them up in one embedding table and sums them (an
//! embedding bag) instead of multiplying a dense multi-hot vector. A
//! note adds the distinct ids of its tokens.

use std::sync::Arc;

use burn::prelude::*;
use rxalign_core::Cohort;

use crate::PolicyError;
use crate::notes::NoteTokenizer;

/// The feature space: diagnoses, then procedures, then the previous visit's
/// drugs, then note tokens, then one padding index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitFeatures {
    pub diagnoses: usize,
    pub procedures: usize,
    pub drugs: usize,
    /// The note tokenizer's vocabulary size (0 without notes).
    pub tokens: usize,
    /// Each visit's distinct note token ids (empty without notes).
    notes: Arc<[Vec<u32>]>,
}

impl VisitFeatures {
    /// Codes and previous drugs only.
    pub fn of(cohort: &Cohort) -> Self {
        Self {
            diagnoses: cohort.diagnoses.len(),
            procedures: cohort.procedures.len(),
            drugs: cohort.drug_count(),
            tokens: 0,
            notes: Arc::from(Vec::new()),
        }
    }

    /// Codes, previous drugs and the tokens of every visit's note.
    pub fn with_notes(cohort: &Cohort, tokenizer: &NoteTokenizer) -> Result<Self, PolicyError> {
        let notes = cohort
            .visits
            .iter()
            .map(|v| {
                v.note
                    .as_deref()
                    .map_or(Ok(Vec::new()), |n| tokenizer.token_set(n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            tokens: tokenizer.vocab_size(),
            notes: Arc::from(notes),
            ..Self::of(cohort)
        })
    }

    /// The number of feature indices, padding included.
    pub fn size(&self) -> usize {
        self.diagnoses + self.procedures + self.drugs + self.tokens + 1
    }

    pub fn padding(&self) -> usize {
        self.size() - 1
    }

    /// The feature indices of visit `v` of `cohort` (the cohort these
    /// features were built for).
    pub fn bag(&self, cohort: &Cohort, v: usize) -> Vec<i64> {
        let visit = &cohort.visits[v];
        let mut out: Vec<i64> = visit.diagnoses.iter().map(|&d| d as i64).collect();
        out.extend(visit.procedures.iter().map(|&p| (self.diagnoses + p) as i64));
        let codes = self.diagnoses + self.procedures;
        if let Some(prev) = visit.previous_drugs() {
            out.extend(prev.iter().map(|d| (codes + d) as i64));
        }
        if let Some(tokens) = self.notes.get(v) {
            out.extend(tokens.iter().map(|&t| (codes + self.drugs + t as usize) as i64));
        }
        out
    }
}

/// Visits as multi-hot rows: each row holds 1 at the visit's feature
/// indices. Multiplying it by a table sums the table's rows at those
/// indices: an embedding bag. On `flex` one matrix product (forward and
/// backward) is several times faster than gathering and scattering the rows
/// (measured by `benches/train_throughput.rs`: see `docs/policies-and-trainer.md`).
///
/// # Shapes
/// - output: `[visits.len(), features.size()]`
pub fn multi_hot<B: Backend>(
    features: &VisitFeatures,
    cohort: &Cohort,
    visits: impl ExactSizeIterator<Item = usize>,
    device: &B::Device,
) -> Tensor<B, 2> {
    let n = visits.len();
    let size = features.size();
    let mut values = vec![0f32; n * size];
    for (row, v) in visits.enumerate() {
        for f in features.bag(cohort, v) {
            values[row * size + f as usize] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(values, [n, size]), device)
}

/// A batch of visits as tensors.
///
/// # Shapes
/// - `visits`: `[batch, features]`, multi-hot (see [`multi_hot`])
/// - `targets`: `[batch, drugs]`, 1 where the drug was prescribed
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    pub visits: Tensor<B, 2>,
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> Batch<B> {
    pub fn new(features: &VisitFeatures, cohort: &Cohort, visits: &[usize], device: &B::Device) -> Self {
        let n = visits.len();
        let drugs = cohort.drug_count();
        let mut targets = vec![0i64; n * drugs];
        for (row, &v) in visits.iter().enumerate() {
            for d in cohort.visits[v].drugs.iter() {
                targets[row * drugs + d] = 1;
            }
        }
        Self {
            visits: multi_hot(features, cohort, visits.iter().copied(), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, drugs]), device),
        }
    }
}
