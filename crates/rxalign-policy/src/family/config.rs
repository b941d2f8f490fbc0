//! A family's settings as the experiment file gives them, and what a
//! family is built from: the two halves of a family that the trainer
//! (`rxalign-train`) registers under a `kind`.

use std::fmt;

use rxalign_core::Cohort;

use super::PolicyFamily;
use crate::PolicyError;
use crate::features::VisitFeatures;

/// What a family is built from: the run's cohort and the visit features of
/// its learned methods (codes, previous drugs, note tokens).
#[derive(Clone, Copy, Debug)]
pub struct FamilyContext<'a> {
    /// The run's cohort.
    pub cohort: &'a Cohort,
    /// The learned methods' features of every visit (codes, previous
    /// drugs, note tokens where the run reads notes).
    pub features: &'a VisitFeatures,
}

/// A family's settings in the experiment file (a plain serde struct with
/// `deny_unknown_fields`).
pub trait FamilyConfig: Clone + fmt::Debug + Send + Sync + 'static {
    type Family: PolicyFamily + 'static;

    /// Checks every setting; the error names the field.
    fn validate(&self) -> Result<(), PolicyError>;

    /// At most this many decisions per episode.
    fn budget(&self) -> usize;

    /// The family on a run's data.
    fn build(&self, ctx: &FamilyContext<'_>) -> Result<Self::Family, PolicyError>;
}
