use std::collections::BTreeMap;

use rand::Rng as _;
use rand::seq::IndexedRandom;
use rxalign_core::{Cohort, DrugSet, Rng};
use serde::{Deserialize, Serialize};

use super::StartList;
use crate::EnvError;

/// Settings of the corrupted ground truth (FLAME's way of making edit
/// training data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorruptedStartConfig {
    /// Probability that each true drug is missing from the start list.
    #[serde(default = "default_rate")]
    pub miss_rate: f64,
    /// Expected wrong drugs per true drug: the number of extras is
    /// `Binomial(|G|, extra_rate)`.
    #[serde(default = "default_rate")]
    pub extra_rate: f64,
    /// Relative per-drug miss rates (for example a classifier's false
    /// negative rates on the training set); drugs not named weigh 1.
    #[serde(default)]
    pub miss_weights: BTreeMap<String, f64>,
    /// Relative per-drug false-positive rates; drugs not named weigh 1.
    #[serde(default)]
    pub extra_weights: BTreeMap<String, f64>,
    /// Probability that each extra is drawn from the drugs that interact
    /// with a true drug (when there are any): the wrong drugs a recommender
    /// scoring drugs one by one tends to add, which an editor should learn
    /// to remove.
    #[serde(default)]
    pub interacting_extra_rate: f64,
}

fn default_rate() -> f64 {
    0.2
}

impl Default for CorruptedStartConfig {
    fn default() -> Self {
        Self {
            miss_rate: default_rate(),
            extra_rate: default_rate(),
            miss_weights: BTreeMap::new(),
            extra_weights: BTreeMap::new(),
            interacting_extra_rate: 0.0,
        }
    }
}

impl CorruptedStartConfig {
    /// Resolves the per-drug weights against the cohort's drugs.
    pub fn init(&self, cohort: &Cohort) -> Result<CorruptedStart, EnvError> {
        let err = |message: String| EnvError::Start {
            kind: "corrupted",
            message,
        };
        for (name, rate) in [
            ("miss_rate", self.miss_rate),
            ("extra_rate", self.extra_rate),
            ("interacting_extra_rate", self.interacting_extra_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(err(format!("`{name}` = {rate} is not in [0, 1]")));
            }
        }
        let resolve = |field: &str, map: &BTreeMap<String, f64>| -> Result<Vec<f64>, EnvError> {
            let mut w = vec![1.0; cohort.drug_count()];
            for (code, &x) in map {
                let d = cohort
                    .drugs
                    .get(code)
                    .ok_or_else(|| err(format!("`{field}` names drug `{code}`, which the dataset lacks")))?;
                if !(x.is_finite() && x >= 0.0) {
                    return Err(err(format!(
                        "`{field}` gives `{code}` the weight {x}; weights are finite and >= 0"
                    )));
                }
                w[d] = x;
            }
            Ok(w)
        };
        Ok(CorruptedStart {
            miss_rate: self.miss_rate,
            extra_rate: self.extra_rate,
            miss_weights: resolve("miss_weights", &self.miss_weights)?,
            extra_weights: resolve("extra_weights", &self.extra_weights)?,
            interacting_extra_rate: self.interacting_extra_rate,
        })
    }
}

/// The error profile of some start lists against the ground truth, as
/// [`CorruptedStart::fitted`] measured it.
#[derive(Clone, Debug, PartialEq)]
pub struct EditProfile {
    pub visits: usize,
    /// `Σ |G|` over the visits.
    pub true_drugs: usize,
    /// `Σ |G \ S|`: true drugs the start lists lack.
    pub misses: usize,
    /// `Σ |S \ G|`: wrong drugs the start lists hold.
    pub extras: usize,
}

impl EditProfile {
    /// Misses per true drug.
    pub fn miss_rate(&self) -> f64 {
        self.misses as f64 / self.true_drugs.max(1) as f64
    }

    /// Extras per true drug (the corruption draws at most one per true drug,
    /// so it uses this capped at 1).
    pub fn extra_rate(&self) -> f64 {
        self.extras as f64 / self.true_drugs.max(1) as f64
    }
}

impl CorruptedStart {
    /// FLAME's edit data with the errors of given start lists (a
    /// classifier's cross-fitted lists of the training patients): the miss
    /// rate is their misses per true drug, the extra rate their wrong drugs
    /// per true drug (capped at 1), a drug's miss weight the share of its
    /// true occurrences they miss, and a drug's extra weight how often they
    /// add it wrongly. A drug they never miss is never dropped and one they
    /// never add wrongly is never added, so where a visit's drawn count
    /// exceeds the drugs that can carry it, it gets fewer.
    pub fn fitted<'s>(
        cohort: &Cohort,
        starts: impl IntoIterator<Item = (usize, &'s DrugSet)>,
    ) -> (Self, EditProfile) {
        let drugs = cohort.drug_count();
        let mut occurs = vec![0usize; drugs];
        let mut missed = vec![0usize; drugs];
        let mut added = vec![0usize; drugs];
        let mut profile = EditProfile {
            visits: 0,
            true_drugs: 0,
            misses: 0,
            extras: 0,
        };
        for (visit, start) in starts {
            let truth = &cohort.visits[visit].drugs;
            profile.visits += 1;
            profile.true_drugs += truth.len();
            for d in truth.iter() {
                occurs[d] += 1;
                if !start.contains(d) {
                    missed[d] += 1;
                    profile.misses += 1;
                }
            }
            for d in start.iter().filter(|&d| !truth.contains(d)) {
                added[d] += 1;
                profile.extras += 1;
            }
        }
        let start = Self {
            miss_rate: profile.miss_rate(),
            extra_rate: profile.extra_rate().min(1.0),
            miss_weights: missed
                .iter()
                .zip(&occurs)
                .map(|(&m, &n)| if n == 0 { 0.0 } else { m as f64 / n as f64 })
                .collect(),
            extra_weights: added.iter().map(|&a| a as f64).collect(),
            interacting_extra_rate: 0.0,
        };
        (start, profile)
    }
}

/// The ground truth with some true drugs dropped (the misses) and some wrong
/// ones inserted (the extras): an edit policy must add the misses back and
/// remove the extras.
///
/// The number of misses is `Binomial(|G|, miss_rate)` and the missed drugs
/// are drawn from `G` without replacement, weighted by `miss_weights`; the
/// number of extras is `Binomial(|G|, extra_rate)` and they are drawn from
/// the drugs outside `G` without replacement, weighted by `extra_weights`;
/// each extra comes, with probability `interacting_extra_rate`, from the
/// drugs outside `G` that interact with a drug of `G`.
#[derive(Clone, Debug)]
pub struct CorruptedStart {
    pub miss_rate: f64,
    pub extra_rate: f64,
    pub miss_weights: Vec<f64>,
    pub extra_weights: Vec<f64>,
    pub interacting_extra_rate: f64,
}

impl StartList for CorruptedStart {
    fn name(&self) -> &str {
        "corrupted"
    }

    fn start(&self, cohort: &Cohort, visit: usize, rng: &mut Rng) -> Result<DrugSet, EnvError> {
        let truth = &cohort.visits[visit].drugs;
        let n = truth.len();
        let misses = (0..n).filter(|_| rng.random_bool(self.miss_rate)).count();
        let extras = (0..n).filter(|_| rng.random_bool(self.extra_rate)).count();
        let mut start = truth.clone();
        let inside: Vec<usize> = truth.iter().collect();
        let outside: Vec<usize> = (0..truth.width()).filter(|&d| !truth.contains(d)).collect();
        let pick = |pool: &[usize], k: usize, weights: &[f64], rng: &mut Rng| -> Vec<usize> {
            let weighted: Vec<usize> = pool.iter().copied().filter(|&d| weights[d] > 0.0).collect();
            weighted
                .choose_multiple_weighted(rng, k.min(weighted.len()), |&d| weights[d])
                .map(|it| it.copied().collect())
                .unwrap_or_default()
        };
        for d in pick(&inside, misses, &self.miss_weights, rng) {
            start.remove(d);
        }
        let interacting: Vec<usize> = if self.interacting_extra_rate > 0.0 {
            outside
                .iter()
                .copied()
                .filter(|&d| truth.iter().any(|t| cohort.ddi.interacts(t, d)))
                .collect()
        } else {
            Vec::new()
        };
        let from_partners = if interacting.is_empty() {
            0
        } else {
            (0..extras)
                .filter(|_| rng.random_bool(self.interacting_extra_rate))
                .count()
        };
        for d in pick(&interacting, from_partners, &self.extra_weights, rng) {
            start.insert(d);
        }
        let rest: Vec<usize> = outside.iter().copied().filter(|&d| !start.contains(d)).collect();
        let placed = start.iter().filter(|&d| !truth.contains(d)).count();
        for d in pick(&rest, extras - placed.min(extras), &self.extra_weights, rng) {
            start.insert(d);
        }
        Ok(start)
    }
}
