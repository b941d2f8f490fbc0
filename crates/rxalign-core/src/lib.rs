//! The domain of rxalign: vocabularies, visits, cohorts, drug sets, the DDI
//! graph, actions and trajectories, every metric, and the run-folder format.
//!
//! This crate links neither burn nor egui (CI checks it with `cargo tree`), so
//! the dashboard, the data tools and any external scorer can depend on it.

pub mod action;
pub mod cohort;
pub mod ddi;
pub mod drug_set;
pub mod error;
pub mod jsonl;
pub mod metrics;
pub mod posterior;
pub mod predictions;
pub mod registry;
pub mod run;
pub mod structure;
pub mod suggest;
pub mod trajectory;
pub mod visit;
pub mod vocab;

pub use action::Action;
pub use cohort::{Cohort, DREAM_SEEDS, SEED_SETS, Split, SplitConfig, SplitName, seed_set};
pub use ddi::{DdiGraph, DdiSource};
pub use drug_set::DrugSet;
pub use error::CoreError;
pub use predictions::{Prediction, PredictionRecord, Predictions};
pub use trajectory::{StepRecord, Trajectory};
pub use visit::{Sex, Visit};
pub use vocab::Vocab;

/// The one random number generator of rxalign: ChaCha8 is portable and
/// stable across platforms and crate versions, so a seed means the same run
/// everywhere. Every random choice takes an explicit `&mut Rng`.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded from a run seed and a stream name, so that independent
/// parts of a run (splitting, start lists, generation) draw from independent
/// streams that do not shift when another part draws more or fewer numbers.
pub fn seeded_rng(seed: u64, stream: &str) -> Rng {
    use rand::SeedableRng;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(stream.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    Rng::from_seed(digest)
}
