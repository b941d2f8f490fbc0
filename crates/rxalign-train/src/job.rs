//! What a training loop is given: the data, its settings, and where it
//! checkpoints and evaluates.

use std::path::Path;

use rxalign_core::{Cohort, DrugSet, Rng};
use rxalign_env::Reward;

use crate::observer::EvalPlan;

/// The run's start list of a visit, drawn from the generator where random.
pub type StartFn<'a> = &'a dyn Fn(usize, &mut Rng) -> Result<DrugSet, String>;

/// One SFT or GRPO run (`S`: its settings).
#[derive(Clone, Copy)]
pub struct Job<'a, S> {
    pub cohort: &'a Cohort,
    pub reward: &'a Reward,
    /// The visits the loop trains on.
    pub train: &'a [usize],
    /// The run's start lists: where SFT's `run` expert sequences and GRPO's
    /// rollouts begin.
    pub starts: StartFn<'a>,
    pub settings: &'a S,
    /// At most this many decisions per episode.
    pub budget: usize,
    pub seed: u64,
    /// Written after every epoch or iteration; one already there is resumed
    /// from.
    pub checkpoint: Option<&'a Path>,
    pub eval: &'a EvalPlan,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Job<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("train", &self.train.len())
            .field("settings", self.settings)
            .field("seed", &self.seed)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}
