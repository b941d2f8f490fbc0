use rxalign_core::{Cohort, DrugSet, Rng};

use super::StartList;
use crate::EnvError;

/// The drugs of the patient's previous visit (empty at a first visit): the
/// policy edits last time's prescription, as MICRON frames it.
#[derive(Debug, Default)]
pub struct PreviousVisitStart;

impl StartList for PreviousVisitStart {
    fn name(&self) -> &str {
        "previous_visit"
    }
    fn start(&self, cohort: &Cohort, visit: usize, _rng: &mut Rng) -> Result<DrugSet, EnvError> {
        Ok(cohort.visits[visit]
            .previous_drugs()
            .cloned()
            .unwrap_or_else(|| DrugSet::empty(cohort.drug_count())))
    }
}
