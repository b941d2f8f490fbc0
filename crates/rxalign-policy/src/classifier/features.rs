//! Visits as bags of feature indices: the codes are a few indices each, so
//! the model looks them up in one embedding table and sums them (an
//! embedding bag) instead of multiplying a dense multi-hot vector. A
//! note adds the distinct ids of its tokens.

use std::sync::Arc;

use burn::prelude::*;
use rxalign_core::{Cohort, DrugSet};

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

/// A batch of visits as tensors.
///
/// # Shapes
/// - `indices`: `[batch, width]`, padded with [`VisitFeatures::padding`]
/// - `mask`: `[batch, width]`, 1 for a feature, 0 for padding
/// - `targets`: `[batch, drugs]`, 1 where the drug was prescribed
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    pub indices: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2>,
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> Batch<B> {
    pub fn new(features: &VisitFeatures, cohort: &Cohort, visits: &[usize], device: &B::Device) -> Self {
        let bags: Vec<Vec<i64>> = visits.iter().map(|&v| features.bag(cohort, v)).collect();
        let width = bags.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let n = visits.len();
        let mut indices = vec![features.padding() as i64; n * width];
        let mut mask = vec![0f32; n * width];
        for (row, bag) in bags.iter().enumerate() {
            for (k, &f) in bag.iter().enumerate() {
                indices[row * width + k] = f;
                mask[row * width + k] = 1.0;
            }
        }
        let drugs = cohort.drug_count();
        let mut targets = vec![0i64; n * drugs];
        for (row, &v) in visits.iter().enumerate() {
            for d in cohort.visits[v].drugs.iter() {
                targets[row * drugs + d] = 1;
            }
        }
        Self {
            indices: Tensor::from_data(TensorData::new(indices, [n, width]), device),
            mask: Tensor::from_data(TensorData::new(mask, [n, width]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, drugs]), device),
        }
    }
}

/// The drugs of a score row at or above a threshold.
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
