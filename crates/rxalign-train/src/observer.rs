//! What a training loop reports: one [`StepLog`] after each epoch (SFT) or
//! iteration (GRPO), with the evaluations made after it, handed to a
//! [`TrainObserver`] (the run's records and loggers) as it happens. The log
//! is kept in the loop's checkpoint, so a resumed loop hands the restored
//! steps to its observer again before it goes on.

use std::collections::BTreeMap;

use burn::prelude::Backend;
use rxalign_core::{Cohort, DrugSet, SplitName, seeded_rng};
use rxalign_env::Reward;
use rxalign_policy::family::{ActMode, PolicyFamily};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::episodes::{Episodes, GREEDY_BATCH};
use crate::select::Selection;

/// An observer's failure, handed back as [`crate::TrainError::Observer`].
pub type ObserverError = Box<dyn std::error::Error + Send + Sync>;

/// One epoch's or iteration's record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// The epoch or iteration, from 1.
    pub step: usize,
    /// Training statistics by metric name (`loss/sft`, `kl`, ...), on the
    /// training split.
    pub train: BTreeMap<String, f64>,
    /// The evaluations made after this step.
    pub evals: Vec<Evaluation>,
    /// Values for histograms by name (`step_reward`, `list_size`).
    pub histograms: BTreeMap<String, Vec<f64>>,
}

/// The greedy lists of one split's evaluation visits, scored by the
/// observer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub split: SplitName,
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The trainer's own mean outcome reward `Phi(S_T) − Phi(S_0)` of the
    /// greedy episodes (what selection by validation compares); `None` for
    /// an empty set or a log written before it was kept.
    #[serde(default)]
    pub outcome: Option<f64>,
}

/// Receives a loop's progress.
pub trait TrainObserver {
    /// Scores the greedy final lists of a split's evaluation visits after
    /// `step`; the metrics are kept in the step's log. By default nothing
    /// (a learner that scores its own evaluations, a silent observer).
    fn evaluate(
        &mut self,
        step: usize,
        split: SplitName,
        lists: &[FinalList],
    ) -> Result<BTreeMap<String, Option<f64>>, ObserverError> {
        let _ = (step, split, lists);
        Ok(BTreeMap::new())
    }

    /// A finished step of `total` (or one restored from a checkpoint).
    fn step(&mut self, log: &StepLog, total: usize) -> Result<(), ObserverError>;

    /// How fast a GRPO iteration went. Shown to the reader only: wall
    /// times differ between reruns, and the records must not.
    fn throughput(&mut self, throughput: &Throughput) -> Result<(), ObserverError> {
        let _ = throughput;
        Ok(())
    }

    /// The model the loop hands on, once it has ended.
    fn selected(&mut self, selection: &Selection) -> Result<(), ObserverError> {
        let _ = selection;
        Ok(())
    }
}

/// The work and wall time of one GRPO iteration: its rollouts (sampling
/// with the policy), then its update (`epochs` gradient steps over every
/// trained part: a token of a language model's line, an action of the list
/// policy).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throughput {
    pub iteration: usize,
    pub rollouts: usize,
    pub rollout_time: std::time::Duration,
    /// Parts trained by one gradient step (the policy chose them; forced
    /// decisions are not trained).
    pub parts: usize,
    pub epochs: usize,
    pub update_time: std::time::Duration,
}

impl Throughput {
    pub fn rollouts_per_s(&self) -> f64 {
        self.rollouts as f64 / self.rollout_time.as_secs_f64().max(1e-9)
    }

    /// Parts trained per second, over every epoch of the update.
    pub fn parts_per_s(&self) -> f64 {
        (self.parts * self.epochs) as f64 / self.update_time.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Throughput {
    /// `iteration 3: 64 rollouts in 2.10 s (30.5 rollouts/s); update: 1 epoch(s) of 1200 trained parts in 0.80 s (1500.0 parts/s)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "iteration {}: {} rollouts in {:.2} s ({:.1} rollouts/s); update: {} epoch(s) of {} trained parts in {:.2} s ({:.1} parts/s)",
            self.iteration,
            self.rollouts,
            self.rollout_time.as_secs_f64(),
            self.rollouts_per_s(),
            self.epochs,
            self.parts,
            self.update_time.as_secs_f64(),
            self.parts_per_s()
        )
    }
}

/// A greedy episode's end: its visit, final list and outcome reward
/// `Phi(S_T) − Phi(S_0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalList {
    pub visit: usize,
    pub list: DrugSet,
    pub outcome: f64,
}

/// An observer that keeps nothing and scores nothing (tests, benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl TrainObserver for Silent {
    fn step(&mut self, _: &StepLog, _: usize) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// The visits a loop evaluates every `every` steps (and after its last),
/// with their start lists.
#[derive(Clone, Debug, Default)]
pub struct EvalPlan {
    /// 0: never during training.
    pub every: usize,
    pub sets: Vec<EvalSet>,
}

/// One split's evaluation visits and their start lists.
#[derive(Clone, Debug)]
pub struct EvalSet {
    pub split: SplitName,
    pub visits: Vec<usize>,
    pub starts: Vec<DrugSet>,
}

impl EvalPlan {
    /// Whether to evaluate after `step` of `last`.
    pub fn due(&self, step: usize, last: usize) -> bool {
        self.every > 0 && !self.sets.is_empty() && (step.is_multiple_of(self.every) || step == last)
    }
}

/// Greedy episodes on every evaluation set, their final lists scored by
/// the observer.
#[expect(clippy::too_many_arguments, reason = "the inputs of one evaluation")]
pub(crate) fn evaluate<F: PolicyFamily, B: Backend>(
    family: &F,
    model: &F::Model<B>,
    cohort: &Cohort,
    reward: &Reward,
    budget: usize,
    plan: &EvalPlan,
    step: usize,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<Vec<Evaluation>, TrainError> {
    let runner = Episodes {
        cohort,
        reward,
        budget,
        mode: ActMode::Greedy,
        max_batch: Some(GREEDY_BATCH),
        record: None,
    };
    let mut out = Vec::with_capacity(plan.sets.len());
    for set in &plan.sets {
        let starts = set
            .visits
            .iter()
            .copied()
            .zip(set.starts.iter().cloned())
            .collect();
        // Greedy decoding draws nothing; the generator is a placeholder.
        let finished = runner.run(family, model, starts, &mut seeded_rng(0, "greedy"), device)?;
        let lists: Vec<FinalList> = finished
            .into_iter()
            .map(|r| FinalList {
                visit: r.visit,
                list: r.final_list,
                outcome: r.outcome,
            })
            .collect();
        let metrics = observer
            .evaluate(step, set.split, &lists)
            .map_err(TrainError::Observer)?;
        let outcome =
            (!lists.is_empty()).then(|| lists.iter().map(|l| l.outcome).sum::<f64>() / lists.len() as f64);
        out.push(Evaluation {
            split: set.split,
            metrics,
            outcome,
        });
    }
    Ok(out)
}
