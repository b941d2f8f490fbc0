use rxalign_core::{Cohort, DrugSet, Rng};

use super::StartList;
use crate::EnvError;

/// Every episode starts from the empty list: the policy builds the whole
/// prescription.
#[derive(Debug, Default)]
pub struct EmptyStart;

impl StartList for EmptyStart {
    fn name(&self) -> &str {
        "empty"
    }
    fn start(&self, cohort: &Cohort, _visit: usize, _rng: &mut Rng) -> Result<DrugSet, EnvError> {
        Ok(DrugSet::empty(cohort.drug_count()))
    }
}
