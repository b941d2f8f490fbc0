//! Visits as bags of feature indices: the codes are a few indices each, so
//! a model looks them up in one embedding table and sums them (an
//! embedding bag) instead of multiplying a dense multi-hot vector. A
//! note adds the distinct ids of its tokens. What a family is built from
//! ([`crate::family::FamilyContext`]).

use std::sync::Arc;

use rxalign_core::Cohort;

use crate::PolicyError;

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

    /// Codes, previous drugs and each visit's distinct note token ids
    /// (`notes[v]` for visit `v`, ids below `tokens`; empty for a visit
    /// without a note), as a note tokenizer gives them
    /// (`rxalign_set_encoder::notes`).
    pub fn with_note_tokens(
        cohort: &Cohort,
        tokens: usize,
        notes: Vec<Vec<u32>>,
    ) -> Result<Self, PolicyError> {
        if notes.len() != cohort.visits.len() {
            return Err(PolicyError::Invalid(format!(
                "note tokens of {} visits for a cohort of {}",
                notes.len(),
                cohort.visits.len()
            )));
        }
        if let Some(id) = notes.iter().flatten().find(|&&id| id as usize >= tokens) {
            return Err(PolicyError::Invalid(format!(
                "note token id {id} outside a vocabulary of {tokens}"
            )));
        }
        Ok(Self {
            tokens,
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
