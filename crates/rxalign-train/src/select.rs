//! Which of a loop's models it hands on: the last one, or the one whose
//! greedy lists scored the best mean outcome reward `Phi(S_T) − Phi(S_0)`
//! on the validation patients (the run's objective, on patients the loop
//! never trains on), with early stopping after `patience` evaluations
//! without improvement.
//!
//! The choice is made from the loop's log alone (every evaluation keeps its
//! validation outcome), so a resumed loop makes the same choice; the best
//! model so far is kept beside the loop's checkpoint (`NAME.best.ckpt`) and
//! becomes the checkpoint's model when the loop ends. The chosen step is
//! handed to the observer ([`crate::observer::TrainObserver::selected`]),
//! which records it.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::SplitName;
use rxalign_policy::checkpoint::{self, Generators};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::learner::Chooser;
use crate::observer::{StepLog, TrainObserver};

pub use rxalign_policy::Select;

/// Checks the selection settings of a loop that evaluates every
/// `eval_every` steps; the error names the field.
pub(crate) fn validate(select: Select, patience: usize, eval_every: usize) -> Result<(), TrainError> {
    if select == Select::Validation && eval_every == 0 {
        return Err(TrainError::Config {
            field: "select",
            message: "`validation` needs evaluations during training: set `eval_every` above 0".into(),
        });
    }
    if patience > 0 && select != Select::Validation {
        return Err(TrainError::Config {
            field: "patience",
            message: format!("early stopping (found {patience}) needs `select: \"validation\"`"),
        });
    }
    Ok(())
}

/// The model a loop handed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub select: Select,
    /// The chosen epoch or iteration (0: GRPO's start).
    pub step: usize,
    /// The last epoch or iteration the loop ran.
    pub last: usize,
    /// The chosen model's mean outcome reward on the validation patients,
    /// where it was evaluated.
    pub outcome: Option<f64>,
    /// Whether the loop stopped before its planned end for lack of
    /// improvement.
    pub stopped_early: bool,
}

/// Follows a loop's validation outcomes step by step.
#[derive(Clone, Debug)]
pub(crate) struct Selector {
    select: Select,
    patience: usize,
    best: Option<(usize, f64)>,
    without_improvement: usize,
    last: usize,
}

/// What a step's evaluations mean for the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// This step's model is the best so far (keep it).
    pub improved: bool,
    /// Stop training (patience exhausted).
    pub stop: bool,
}

impl Selector {
    pub(crate) fn new(select: Select, patience: usize) -> Self {
        Self {
            select,
            patience,
            best: None,
            without_improvement: 0,
            last: 0,
        }
    }

    /// Takes in a finished (or restored) step.
    pub(crate) fn observe(&mut self, entry: &StepLog) -> Verdict {
        self.last = self.last.max(entry.step);
        let outcome = entry
            .evals
            .iter()
            .find(|e| e.split == SplitName::Val)
            .and_then(|e| e.outcome);
        let Some(outcome) = outcome.filter(|_| self.select == Select::Validation) else {
            return Verdict {
                improved: false,
                stop: false,
            };
        };
        let improved = self.best.is_none_or(|(_, best)| outcome > best);
        if improved {
            self.best = Some((entry.step, outcome));
            self.without_improvement = 0;
        } else {
            self.without_improvement += 1;
        }
        Verdict {
            improved,
            stop: self.stopped(),
        }
    }

    /// Whether the patience is exhausted.
    pub(crate) fn stopped(&self) -> bool {
        self.patience > 0 && self.without_improvement >= self.patience
    }

    /// The step whose model the loop hands on.
    pub(crate) fn chosen(&self) -> usize {
        match (self.select, self.best) {
            (Select::Validation, Some((step, _))) => step,
            _ => self.last,
        }
    }

    pub(crate) fn selection(&self, planned_last: usize) -> Selection {
        Selection {
            select: self.select,
            step: self.chosen(),
            last: self.last,
            outcome: self
                .best
                .filter(|&(step, _)| step == self.chosen())
                .map(|(_, outcome)| outcome),
            stopped_early: self.last < planned_last,
        }
    }
}

/// A loop's selection with the best model so far, kept in memory and, where
/// the loop checkpoints, in the file beside its checkpoint: the usual
/// [`Chooser`].
#[derive(Debug)]
pub struct Keeper<M> {
    selector: Selector,
    best: Option<M>,
    /// The best model's file, beside the loop's checkpoint.
    path: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
    /// Which parameters the files keep (the family's say).
    keep: checkpoint::Keep,
}

impl<M: Clone> Keeper<M> {
    /// The last step's model (`Select::Last`), or the best validation
    /// outcome's, stopping after `patience` evaluations without improvement
    /// (0: never early); for a loop checkpointing at `checkpoint`.
    pub fn new(select: Select, patience: usize, checkpoint: Option<&Path>, keep: checkpoint::Keep) -> Self {
        Self {
            selector: Selector::new(select, patience),
            best: None,
            path: checkpoint.map(best_path),
            checkpoint: checkpoint.map(Path::to_path_buf),
            keep,
        }
    }
}

impl<B, M> Chooser<B, M> for Keeper<M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    /// Takes in the steps restored from a checkpoint (their best model is
    /// in the file, read if it is chosen).
    fn restore(&mut self, log: &[StepLog], _: &M, _: &B::Device) -> Result<(), TrainError> {
        for entry in log {
            self.selector.observe(entry);
        }
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.selector.stopped()
    }

    /// Keeps `model` if it is the best so far.
    fn step<O: Optimizer<M, B>, R: Generators>(
        &mut self,
        entry: &StepLog,
        model: &M,
        optim: &O,
        rng: &R,
    ) -> Result<bool, TrainError> {
        let verdict = self.selector.observe(entry);
        if verdict.improved {
            self.best = Some(model.clone());
            let none: &[StepLog] = &[];
            checkpoint::save_loop(
                self.path.as_deref(),
                self.keep,
                model,
                optim,
                entry.step,
                rng,
                none,
            )?;
        }
        Ok(verdict.stop)
    }

    /// Where an earlier step is chosen, its model replaces the last one in
    /// the loop's checkpoint, which is what later stages and the evaluation
    /// read.
    fn finish<O: Optimizer<M, B>, R: Generators>(
        self,
        current: M,
        optim: &O,
        rng: &R,
        log: &[StepLog],
        planned: usize,
        observer: &mut dyn TrainObserver,
        device: &B::Device,
    ) -> Result<M, TrainError> {
        let selection = self.selector.selection(planned);
        let chosen = if selection.step == selection.last {
            current
        } else {
            let model = match (self.best, &self.path) {
                (Some(best), _) => best,
                (None, Some(path)) => checkpoint::load_module(path, current, device)?,
                (None, None) => {
                    return Err(TrainError::Invalid(format!(
                        "the model of step {} was chosen but is not kept",
                        selection.step
                    )));
                }
            };
            checkpoint::save_loop(
                self.checkpoint.as_deref(),
                self.keep,
                &model,
                optim,
                selection.last,
                rng,
                log,
            )?;
            model
        };
        observer.selected(&selection).map_err(TrainError::Observer)?;
        Ok(chosen)
    }
}

/// Where the best model so far is kept, beside the loop's checkpoint.
pub fn best_path(checkpoint: &Path) -> PathBuf {
    beside(checkpoint, "best")
}

/// The file of `part` beside a loop's checkpoint: `02-sft.ckpt` and
/// `best` give `02-sft.best.ckpt`.
pub fn beside(checkpoint: &Path, part: &str) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    checkpoint.with_file_name(format!("{stem}.{part}.ckpt"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::Evaluation;

    fn step(step: usize, outcome: Option<f64>) -> StepLog {
        StepLog {
            step,
            evals: vec![Evaluation {
                split: SplitName::Val,
                metrics: Default::default(),
                outcome,
            }],
            ..StepLog::default()
        }
    }

    #[test]
    fn the_best_validation_step_is_chosen_and_ties_keep_the_earliest() {
        let mut s = Selector::new(Select::Validation, 0);
        let verdicts: Vec<bool> = [(1, 0.01), (2, 0.03), (3, 0.03), (4, 0.02)]
            .iter()
            .map(|&(k, o)| s.observe(&step(k, Some(o))).improved)
            .collect();
        assert_eq!(verdicts, [true, true, false, false]);
        let chosen = s.selection(4);
        assert_eq!(
            (chosen.step, chosen.outcome, chosen.stopped_early),
            (2, Some(0.03), false)
        );
    }

    #[test]
    fn patience_stops_after_so_many_evaluations_without_improvement() {
        let mut s = Selector::new(Select::Validation, 2);
        assert!(!s.observe(&step(1, Some(0.05))).stop);
        assert!(!s.observe(&step(2, Some(0.04))).stop);
        // A step without a validation evaluation counts for nothing.
        assert!(!s.observe(&step(3, None)).stop);
        assert!(s.observe(&step(4, Some(0.05))).stop);
        let chosen = s.selection(10);
        assert_eq!((chosen.step, chosen.last, chosen.stopped_early), (1, 4, true));
    }

    #[test]
    fn last_ignores_the_evaluations() {
        let mut s = Selector::new(Select::Last, 0);
        s.observe(&step(1, Some(0.5)));
        s.observe(&step(2, Some(0.1)));
        assert_eq!(s.selection(2).step, 2);
        assert_eq!(s.selection(2).outcome, None);
    }

    #[test]
    fn settings_that_cannot_select_are_refused_by_field() {
        let field = |r: Result<(), TrainError>| match r {
            Err(TrainError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(validate(Select::Validation, 0, 0)), "select");
        assert_eq!(field(validate(Select::Last, 3, 1)), "patience");
        assert!(validate(Select::Validation, 3, 1).is_ok());
    }

    #[test]
    fn the_best_model_sits_beside_the_checkpoint() {
        assert_eq!(
            best_path(Path::new("run/checkpoints/02-sft.ckpt")),
            Path::new("run/checkpoints/02-sft.best.ckpt")
        );
    }
}
