//! How a training stage uses the training patients: all of them, or one of
//! several disjoint parts, so that alignment can run on patients the SFT
//! stage never saw (its rewards then measure editing, not memory).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rxalign_core::{Cohort, seeded_rng};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Part `part` (from 1) of `of` disjoint parts of the training patients,
/// written `patients: (part: 1, of: 2)`; `(part: 1, of: 1)`, the default,
/// is every training patient. The parts are drawn from the run's seed
/// alone, so every stage of a run sees the same parts; a patient's visits
/// all fall in one part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientPart {
    pub part: usize,
    pub of: usize,
}

impl Default for PatientPart {
    fn default() -> Self {
        Self { part: 1, of: 1 }
    }
}

impl PatientPart {
    /// Checks `1 <= part <= of`.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.of == 0 || self.part == 0 || self.part > self.of {
            return Err(TrainError::Config {
                field: "patients",
                message: format!(
                    "part {} of {}: parts count from 1 to `of`, and `of` is at least 1",
                    self.part, self.of
                ),
            });
        }
        Ok(())
    }
}

/// The training visits a stage trains on: those of the patients in `part`
/// (all of `train` for one part).
pub fn training_visits(part: PatientPart, cohort: &Cohort, train: &[usize], seed: u64) -> Vec<usize> {
    if part.of == 1 {
        return train.to_vec();
    }
    let mut patients: Vec<&str> = train
        .iter()
        .map(|&v| cohort.visits[v].patient_id.as_str())
        .collect();
    patients.sort_unstable();
    patients.dedup();
    patients.shuffle(&mut seeded_rng(seed, "patient-parts"));
    let part_of: BTreeMap<&str, usize> = patients
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, i % part.of + 1))
        .collect();
    train
        .iter()
        .copied()
        .filter(|&v| part_of.get(cohort.visits[v].patient_id.as_str()) == Some(&part.part))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_cover_the_patients_and_keep_a_patient_whole() {
        let cohort = rxalign_policy::test_support::tiny();
        let train = [0, 1];
        let all = training_visits(PatientPart::default(), &cohort, &train, 3);
        assert_eq!(all, train);
        let a = training_visits(PatientPart { part: 1, of: 2 }, &cohort, &train, 3);
        let b = training_visits(PatientPart { part: 2, of: 2 }, &cohort, &train, 3);
        assert_eq!(a.len() + b.len(), 2);
        assert!(a.iter().all(|v| !b.contains(v)));
        // The same seed gives the same parts.
        assert_eq!(
            a,
            training_visits(PatientPart { part: 1, of: 2 }, &cohort, &train, 3)
        );
        assert!(PatientPart { part: 3, of: 2 }.validate().is_err());
        assert!(PatientPart { part: 0, of: 2 }.validate().is_err());
    }
}
