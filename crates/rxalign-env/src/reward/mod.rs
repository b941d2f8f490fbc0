//! Reward terms: potentials over the current list, higher is better. The
//! list potential is their weighted sum `Phi = Σ_k w_k phi_k`; penalties
//! (DDI, overprescription, refusal) are negative potentials, so their
//! weights are positive.
//!
//! Built-in terms read only [`ListStats`], so each step costs a few
//! arithmetic operations; a researcher's term may read the list itself.
//! Penalties are written `0.0 − x` rather than `−x` so that no penalty logs
//! as `+0.0`, never `−0.0`.

mod ddi_rate;
mod f1;
mod jaccard;
mod overprescription;
mod overprescription_size;
mod precision;
mod recall;
mod refusal;

use std::fmt;

use rxalign_core::registry::{Registry, params};
use rxalign_core::{DdiGraph, DrugSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use ddi_rate::DdiRateReward;
pub use f1::F1Reward;
pub use jaccard::JaccardReward;
pub use overprescription::OverprescriptionReward;
pub use overprescription_size::OverprescriptionSizeReward;
pub use precision::PrecisionReward;
pub use recall::RecallReward;
pub use refusal::RefusalReward;

use crate::{EnvError, ListStats};

/// What a potential sees: the list's statistics, the list, the ground truth
/// and the DDI graph.
#[derive(Clone, Copy, Debug)]
pub struct ListContext<'a> {
    /// Counts of the list against the truth, kept up to date by the episode.
    pub stats: &'a ListStats,
    /// The list `S`.
    pub list: &'a DrugSet,
    /// The ground truth `G`.
    pub truth: &'a DrugSet,
    /// The cohort's drug-drug interactions.
    pub ddi: &'a DdiGraph,
}

/// A reward term: a potential `phi(S; visit)` over the current list.
pub trait RewardTerm: Send + Sync + fmt::Debug {
    /// The stable name, used in step breakdowns, logs and trajectories.
    fn name(&self) -> &str;
    /// One line saying what the potential is.
    fn definition(&self) -> &str;
    /// `phi(S)`, unweighted.
    fn potential(&self, ctx: &ListContext<'_>) -> f64;
}

/// A reward term with its weight, as an experiment file names it:
/// `(kind: "ddi_rate", weight: 0.2)` with any parameters of the term beside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardTermSpec {
    pub kind: String,
    pub weight: f64,
    /// The term's own parameters (none for the built-ins).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

impl RewardTermSpec {
    pub fn new(kind: &str, weight: f64) -> Self {
        Self {
            kind: kind.to_string(),
            weight,
            params: Value::Null,
        }
    }
}

/// The terms of the list potential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardConfig {
    pub terms: Vec<RewardTermSpec>,
}

impl RewardConfig {
    /// FLAME's released potential: Jaccard 1.0, DDI 0 (swept in the paper),
    /// refusal 0.2.
    pub fn flame() -> Self {
        Self {
            terms: vec![
                RewardTermSpec::new("jaccard", 1.0),
                RewardTermSpec::new("refusal", 0.2),
            ],
        }
    }

    /// Builds the weighted sum from the built-in terms.
    pub fn init(&self) -> Result<Reward, EnvError> {
        self.init_with(&registry())
    }

    /// Builds the weighted sum with a registry holding a researcher's terms.
    pub fn init_with(&self, registry: &Registry<dyn RewardTerm, ()>) -> Result<Reward, EnvError> {
        let terms = self
            .terms
            .iter()
            .map(|spec| Ok((spec.weight, registry.build(&spec.kind, &spec.params, &())?)))
            .collect::<Result<Vec<_>, EnvError>>()?;
        Reward::from_terms(terms)
    }
}

/// The built-in reward terms, in one explicit list. Register a term of your
/// own on the returned registry and build with [`RewardConfig::init_with`].
pub fn registry() -> Registry<dyn RewardTerm, ()> {
    let mut r: Registry<dyn RewardTerm, ()> = Registry::new("reward term");
    macro_rules! builtin {
        ($kind:literal, $ty:ty) => {
            r.register($kind, |p, _| {
                params::<NoParams>(p)?;
                Ok(Box::new(<$ty>::default()) as Box<dyn RewardTerm>)
            })
            .expect("built-in kinds are distinct");
        };
    }
    builtin!("jaccard", JaccardReward);
    builtin!("f1", F1Reward);
    builtin!("precision", PrecisionReward);
    builtin!("recall", RecallReward);
    builtin!("ddi_rate", DdiRateReward);
    builtin!("overprescription", OverprescriptionReward);
    builtin!("overprescription_size", OverprescriptionSizeReward);
    builtin!("refusal", RefusalReward);
    r
}

/// The parameters of a term that has none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// The list potential: the weighted sum of its terms.
#[derive(Debug)]
pub struct Reward {
    terms: Vec<(f64, Box<dyn RewardTerm>)>,
}

impl Reward {
    /// The weighted sum of built terms: at least one, each weight finite,
    /// no term name twice.
    pub fn from_terms(terms: Vec<(f64, Box<dyn RewardTerm>)>) -> Result<Self, EnvError> {
        for (i, (weight, term)) in terms.iter().enumerate() {
            if !weight.is_finite() {
                return Err(EnvError::Config(format!(
                    "reward term `{}` has weight {weight}",
                    term.name()
                )));
            }
            if terms[..i].iter().any(|(_, t)| t.name() == term.name()) {
                return Err(EnvError::Config(format!(
                    "reward term `{}` is listed twice",
                    term.name()
                )));
            }
        }
        if terms.is_empty() {
            return Err(EnvError::Config("the reward needs at least one term".into()));
        }
        Ok(Self { terms })
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.terms.iter().map(|(_, t)| t.name().to_string()).collect()
    }

    pub fn weights(&self) -> Vec<f64> {
        self.terms.iter().map(|(w, _)| *w).collect()
    }

    /// `Phi(S)`, writing each weighted term `w_k phi_k(S)` into `out`.
    pub fn weighted_terms(&self, ctx: &ListContext<'_>, out: &mut [f64]) -> f64 {
        let mut total = 0.0;
        for ((w, t), o) in self.terms.iter().zip(out.iter_mut()) {
            *o = w * t.potential(ctx);
            total += *o;
        }
        total
    }
}

#[cfg(test)]
mod tests;
