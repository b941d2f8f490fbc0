//! Non-learned recommenders: the baselines every learned policy must beat.
//! Each fits on training visits and writes the common predictions format
//! (with scores, so PRAUC is defined).

mod cooccurrence;
mod counts;
mod everything_indicated;
mod most_frequent;

use std::fmt;

use rxalign_core::registry::{Registry, params};
use rxalign_core::{Cohort, Prediction, PredictionRecord, Predictions};

pub use cooccurrence::{CooccurrenceConfig, CooccurrenceRecommender};
pub use everything_indicated::{EverythingIndicatedConfig, EverythingIndicatedRecommender};
pub use most_frequent::{MostFrequentConfig, MostFrequentRecommender};

/// A recommender that needs no gradient.
pub trait Recommender: Send + Sync + fmt::Debug {
    /// The stable `kind` name, used as the method's name in tables.
    fn name(&self) -> &str;
    /// Learns from the training visits.
    fn fit(&mut self, cohort: &Cohort, train: &[usize]);
    /// The list (and scores) for one visit.
    fn predict(&self, cohort: &Cohort, visit: usize) -> Prediction;
}

/// The built-in baselines, in one explicit list.
pub fn registry() -> Registry<dyn Recommender, ()> {
    let mut r: Registry<dyn Recommender, ()> = Registry::new("baseline");
    r.register("most_frequent", |p, _| {
        Ok(Box::new(MostFrequentRecommender::new(params::<MostFrequentConfig>(p)?)) as Box<dyn Recommender>)
    })
    .expect("distinct kinds");
    r.register("cooccurrence", |p, _| {
        Ok(Box::new(CooccurrenceRecommender::new(params::<CooccurrenceConfig>(p)?)) as Box<dyn Recommender>)
    })
    .expect("distinct kinds");
    r.register("everything_indicated", |p, _| {
        Ok(Box::new(EverythingIndicatedRecommender::new(params::<
            EverythingIndicatedConfig,
        >(p)?)) as Box<dyn Recommender>)
    })
    .expect("distinct kinds");
    r
}

/// The kinds of the built-in baselines, in report order.
pub const BUILTIN: [&str; 3] = ["most_frequent", "cooccurrence", "everything_indicated"];

/// Predictions of `recommender` for the given visits, keyed by visit index.
pub fn predict(recommender: &dyn Recommender, cohort: &Cohort, visits: &[usize]) -> Predictions {
    Predictions {
        by_visit: visits
            .iter()
            .map(|&v| (v, recommender.predict(cohort, v)))
            .collect(),
    }
}

/// The records of a predictions file, in the order of `visits`.
pub fn records(recommender: &dyn Recommender, cohort: &Cohort, visits: &[usize]) -> Vec<PredictionRecord> {
    visits
        .iter()
        .map(|&v| {
            recommender
                .predict(cohort, v)
                .to_record(&cohort.visits[v].visit_id, &cohort.drugs)
        })
        .collect()
}

#[cfg(test)]
mod tests;
