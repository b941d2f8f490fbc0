//! Start lists: where an episode begins.

mod corrupted;
mod empty;
mod predictions_file;
mod previous_visit;

use std::fmt;

use rxalign_core::registry::{Registry, params};
use rxalign_core::{Cohort, DrugSet, Rng};

pub use corrupted::{CorruptedStart, CorruptedStartConfig, EditProfile};
pub use empty::EmptyStart;
pub use predictions_file::{PredictionsStart, PredictionsStartConfig};
pub use previous_visit::PreviousVisitStart;

use crate::EnvError;

/// A start-list plugin: the list an episode of a visit begins from.
pub trait StartList: Send + Sync + fmt::Debug {
    /// The stable `kind` name.
    fn name(&self) -> &str;
    /// The start list of visit `visit` of `cohort`. Random choices draw from
    /// `rng` only.
    fn start(&self, cohort: &Cohort, visit: usize, rng: &mut Rng) -> Result<DrugSet, EnvError>;
}

/// The built-in start lists, in one explicit list; builders get the cohort
/// to resolve drug codes and files against.
pub fn registry() -> Registry<dyn StartList, Cohort> {
    let mut r: Registry<dyn StartList, Cohort> = Registry::new("start list");
    r.register("empty", |p, _| {
        params::<NoParams>(p)?;
        Ok(Box::new(EmptyStart) as Box<dyn StartList>)
    })
    .expect("distinct kinds");
    r.register("previous_visit", |p, _| {
        params::<NoParams>(p)?;
        Ok(Box::new(PreviousVisitStart) as Box<dyn StartList>)
    })
    .expect("distinct kinds");
    r.register("corrupted", |p, cohort| {
        let config: CorruptedStartConfig = params(p)?;
        Ok(Box::new(config.init(cohort).map_err(|e| e.to_string())?) as Box<dyn StartList>)
    })
    .expect("distinct kinds");
    r.register("predictions", |p, cohort| {
        let config: PredictionsStartConfig = params(p)?;
        Ok(Box::new(config.init(cohort).map_err(|e| e.to_string())?) as Box<dyn StartList>)
    })
    .expect("distinct kinds");
    r
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[cfg(test)]
mod tests;
