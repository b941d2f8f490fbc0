//! The start list `safe_previous_visit`.

use rxalign_core::{Cohort, DrugSet, Rng};
use rxalign_env::{EnvError, StartList};
use serde::Deserialize;

/// The previous visit's drugs (empty at a first visit) without the drugs
/// that interact with one kept: going through them in index order, a drug
/// is kept unless it interacts with a drug already kept.
#[derive(Debug, Default)]
pub struct SafePreviousVisit;

impl StartList for SafePreviousVisit {
    fn name(&self) -> &str {
        "safe_previous_visit"
    }

    fn start(&self, cohort: &Cohort, visit: usize, _rng: &mut Rng) -> Result<DrugSet, EnvError> {
        let mut kept = DrugSet::empty(cohort.drug_count());
        let Some(Some(previous)) = cohort.visits.get(visit).map(|v| v.previous_drugs()) else {
            return Ok(kept);
        };
        for d in previous.iter() {
            if cohort.ddi.neighbours(d).intersection_len(&kept) == 0 {
                kept.insert(d);
            }
        }
        Ok(kept)
    }
}

/// Episodes start from the previous visit's drugs without interacting pairs
/// (the later drug of each pair dropped, in index order).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SafePreviousVisitConfig {}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rxalign_core::{DdiGraph, Visit, Vocab};

    use super::*;

    #[test]
    fn interacting_drugs_of_the_previous_visit_are_dropped() {
        let mut drugs = Vocab::new();
        for code in ["A", "B", "C"] {
            drugs.insert(code, code);
        }
        let ddi = DdiGraph::from_pairs(3, [(0, 1)], "test").unwrap();
        let first = Visit::new("p", "v1", DrugSet::from_indices(3, [0, 1, 2]));
        let mut second = Visit::new("p", "v2", DrugSet::from_indices(3, [1]));
        second.history = vec![first.drugs.clone()];
        let cohort = Cohort::new(
            "test",
            drugs,
            Vocab::new(),
            Vocab::new(),
            vec![first, second],
            ddi,
        )
        .unwrap();
        let mut rng = Rng::seed_from_u64(0);
        let start = SafePreviousVisit.start(&cohort, 1, &mut rng).unwrap();
        assert_eq!(start.to_vec(), vec![0, 2], "B interacts with A, kept first");
        assert!(SafePreviousVisit.start(&cohort, 0, &mut rng).unwrap().is_empty());
    }
}
