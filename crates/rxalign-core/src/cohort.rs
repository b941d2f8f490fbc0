//! A cohort: visits, vocabularies, the DDI graph and the split.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::{CoreError, DdiGraph, Visit, Vocab};

/// The visits of a dataset with everything needed to read them.
#[derive(Clone, Debug)]
pub struct Cohort {
    pub name: String,
    pub drugs: Vocab,
    pub diagnoses: Vocab,
    pub procedures: Vocab,
    pub visits: Vec<Visit>,
    pub ddi: DdiGraph,
    by_id: HashMap<String, usize>,
}

impl Cohort {
    /// Builds a cohort; visit ids must be unique and every drug set must span
    /// the drug vocabulary.
    pub fn new(
        name: impl Into<String>,
        drugs: Vocab,
        diagnoses: Vocab,
        procedures: Vocab,
        visits: Vec<Visit>,
        ddi: DdiGraph,
    ) -> Result<Self, CoreError> {
        if ddi.width() != drugs.len() {
            return Err(CoreError::Invalid(format!(
                "the DDI graph spans {} drugs but the vocabulary has {}",
                ddi.width(),
                drugs.len()
            )));
        }
        let mut by_id = HashMap::with_capacity(visits.len());
        for (i, v) in visits.iter().enumerate() {
            if v.drugs.width() != drugs.len() {
                return Err(CoreError::Invalid(format!(
                    "visit {} has a drug set of width {} for {} drugs",
                    v.visit_id,
                    v.drugs.width(),
                    drugs.len()
                )));
            }
            if by_id.insert(v.visit_id.clone(), i).is_some() {
                return Err(CoreError::Invalid(format!(
                    "visit id {} appears twice",
                    v.visit_id
                )));
            }
        }
        Ok(Self {
            name: name.into(),
            drugs,
            diagnoses,
            procedures,
            visits,
            ddi,
            by_id,
        })
    }

    /// The index of a visit by its id.
    pub fn visit_index(&self, visit_id: &str) -> Option<usize> {
        self.by_id.get(visit_id).copied()
    }

    /// The number of distinct patients.
    pub fn patient_count(&self) -> usize {
        let mut ids: Vec<&str> = self.visits.iter().map(|v| v.patient_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The number of drugs (the width of every drug set).
    pub fn drug_count(&self) -> usize {
        self.drugs.len()
    }

    /// Splits the visits by patient (no patient on two sides).
    pub fn split(&self, config: &SplitConfig) -> Split {
        let mut patients: Vec<&str> = self.visits.iter().map(|v| v.patient_id.as_str()).collect();
        patients.sort_unstable();
        patients.dedup();
        let mut rng = crate::seeded_rng(config.seed, "split");
        patients.shuffle(&mut rng);
        let n = patients.len();
        let n_train = ((n as f64) * config.train).round() as usize;
        let n_val = (((n as f64) * config.val).round() as usize).min(n - n_train.min(n));
        let side: HashMap<&str, SplitName> = patients
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = if i < n_train {
                    SplitName::Train
                } else if i < n_train + n_val {
                    SplitName::Val
                } else {
                    SplitName::Test
                };
                (*p, name)
            })
            .collect();
        let mut split = Split {
            config: config.clone(),
            train: Vec::new(),
            val: Vec::new(),
            test: Vec::new(),
        };
        for (i, v) in self.visits.iter().enumerate() {
            match side[v.patient_id.as_str()] {
                SplitName::Train => split.train.push(i),
                SplitName::Val => split.val.push(i),
                _ => split.test.push(i),
            }
        }
        split
    }
}

/// How to split a cohort: shares of patients for training and validation; the
/// rest is the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub seed: u64,
    #[serde(default = "SplitConfig::default_train")]
    pub train: f64,
    #[serde(default = "SplitConfig::default_val")]
    pub val: f64,
}

impl SplitConfig {
    fn default_train() -> f64 {
        2.0 / 3.0
    }
    fn default_val() -> f64 {
        1.0 / 6.0
    }

    /// GAMENet's and SafeDrug's shares: 2/3 train, 1/6 validation, 1/6 test.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            train: Self::default_train(),
            val: Self::default_val(),
        }
    }

    /// The DREAM benchmark's shares (the split behind its published FLAME
    /// and LAMO rows): 66% of patients train, 17% validation, 17% test.
    /// DREAM draws a split per seed; an experiment file does the same with
    /// `split: (train: 0.66, val: 0.17, from_run_seed: true)`.
    pub fn dream(seed: u64) -> Self {
        Self {
            seed,
            train: 0.66,
            val: 0.17,
        }
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        let ok = |x: f64| (0.0..=1.0).contains(&x);
        if !ok(self.train) || !ok(self.val) || self.train + self.val > 1.0 + 1e-9 {
            return Err(CoreError::Invalid(format!(
                "split shares must lie in [0, 1] and sum to at most 1 (train {}, val {})",
                self.train, self.val
            )));
        }
        Ok(())
    }
}

/// The DREAM benchmark's five seeds, in its order.
pub const DREAM_SEEDS: [u64; 5] = [1203, 2024, 42, 1234, 5678];

/// The named seed sets an experiment file's `seed` axis may name instead of
/// listing seeds (`ablations: (grid: {"seed": "dream"})`).
pub const SEED_SETS: [(&str, &[u64]); 1] = [("dream", &DREAM_SEEDS)];

/// The seeds of a named set; the error lists the known names.
pub fn seed_set(name: &str) -> Result<&'static [u64], CoreError> {
    SEED_SETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, seeds)| *seeds)
        .ok_or_else(|| {
            CoreError::Invalid(format!(
                "unknown seed set `{name}`; known: {}",
                SEED_SETS
                    .iter()
                    .map(|(n, s)| format!("`{n}` ({s:?})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Visit indices of each side of a split.
#[derive(Clone, Debug)]
pub struct Split {
    pub config: SplitConfig,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Split {
    /// The visit indices of a named split; `All` is every visit.
    pub fn indices(&self, name: SplitName, total: usize) -> Vec<usize> {
        match name {
            SplitName::All => (0..total).collect(),
            SplitName::Train => self.train.clone(),
            SplitName::Val => self.val.clone(),
            SplitName::Test => self.test.clone(),
        }
    }
}

/// A named part of a cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitName {
    All,
    Train,
    Val,
    Test,
}

impl fmt::Display for SplitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::All => "all",
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        })
    }
}

impl FromStr for SplitName {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "train" => Ok(Self::Train),
            "val" => Ok(Self::Val),
            "test" => Ok(Self::Test),
            other => Err(CoreError::Invalid(format!(
                "unknown split `{other}`; known: all, train, val, test"
            ))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::DrugSet;

    fn cohort(patients: usize, visits_each: usize) -> Cohort {
        cohort_of(&vec![visits_each; patients])
    }

    /// A cohort of one drug where patient `p{i}` has `visits_of[i]` visits.
    pub(crate) fn cohort_of(visits_of: &[usize]) -> Cohort {
        let mut drugs = Vocab::new();
        drugs.insert("D", "d");
        let mut visits = Vec::new();
        for (p, &n) in visits_of.iter().enumerate() {
            for v in 0..n {
                visits.push(Visit::new(
                    format!("p{p}"),
                    format!("p{p}v{v}"),
                    DrugSet::empty(1),
                ));
            }
        }
        let ddi = DdiGraph::empty(1, "none");
        Cohort::new("t", drugs, Vocab::new(), Vocab::new(), visits, ddi).unwrap()
    }

    #[test]
    fn split_is_by_patient_seeded_and_complete() {
        let c = cohort(60, 3);
        let s = c.split(&SplitConfig::with_seed(7));
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 180);
        assert_eq!(s.train.len(), 40 * 3);
        assert_eq!(s.val.len(), 10 * 3);
        let side = |ix: &[usize]| -> std::collections::BTreeSet<String> {
            ix.iter().map(|&i| c.visits[i].patient_id.clone()).collect()
        };
        assert!(side(&s.train).is_disjoint(&side(&s.test)));
        assert!(side(&s.train).is_disjoint(&side(&s.val)));
        let again = c.split(&SplitConfig::with_seed(7));
        assert_eq!(s.test, again.test);
        let other = c.split(&SplitConfig::with_seed(8));
        assert_ne!(s.test, other.test);
    }

    /// Issue #24: the DREAM benchmark's split puts 66/17/17% of the
    /// patients in train, val and test (within rounding), no patient in two
    /// parts, the same patients for the same seed and others for another.
    #[test]
    fn the_dream_split_has_its_shares_by_patient() {
        for (patients, visits_each) in [(100, 2), (997, 1), (30, 3)] {
            let c = cohort(patients, visits_each);
            let patients_of =
                |s: &Split, ix: fn(&Split) -> &Vec<usize>| -> std::collections::BTreeSet<String> {
                    ix(s).iter().map(|&i| c.visits[i].patient_id.clone()).collect()
                };
            for seed in DREAM_SEEDS {
                let s = c.split(&SplitConfig::dream(seed));
                let (train, val, test) = (
                    patients_of(&s, |s| &s.train),
                    patients_of(&s, |s| &s.val),
                    patients_of(&s, |s| &s.test),
                );
                let n = patients as f64;
                assert!(
                    (train.len() as f64 - 0.66 * n).abs() <= 0.5,
                    "{patients}: train {}",
                    train.len()
                );
                assert!(
                    (val.len() as f64 - 0.17 * n).abs() <= 0.5,
                    "{patients}: val {}",
                    val.len()
                );
                assert!(
                    (test.len() as f64 - 0.17 * n).abs() <= 1.0,
                    "{patients}: test {}",
                    test.len()
                );
                assert_eq!(train.len() + val.len() + test.len(), patients);
                assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test));
                let again = c.split(&SplitConfig::dream(seed));
                assert_eq!(patients_of(&again, |s| &s.test), test);
                assert_eq!(patients_of(&again, |s| &s.train), train);
            }
            let a = c.split(&SplitConfig::dream(DREAM_SEEDS[0]));
            let b = c.split(&SplitConfig::dream(DREAM_SEEDS[1]));
            assert_ne!(patients_of(&a, |s| &s.test), patients_of(&b, |s| &s.test));
        }
        assert_eq!(seed_set("dream").unwrap(), &DREAM_SEEDS);
        assert!(
            seed_set("dreams")
                .unwrap_err()
                .to_string()
                .contains("known: `dream`")
        );
    }

    #[test]
    fn duplicate_visit_ids_are_rejected() {
        let c = cohort(1, 1);
        let mut visits = c.visits.clone();
        visits.push(visits[0].clone());
        let err = Cohort::new("t", c.drugs.clone(), Vocab::new(), Vocab::new(), visits, c.ddi).unwrap_err();
        assert!(err.to_string().contains("appears twice"));
    }
}
