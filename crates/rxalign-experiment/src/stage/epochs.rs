//! What the classifier and LAMO stages share: the observer of their
//! training loop (`rxalign_train::learner`), whose step is an epoch scored
//! on the validation visits by the learner itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rxalign_core::SplitName;
use rxalign_core::run::MetricsRecord;
use rxalign_train::observer::{FinalList, ObserverError, StepLog, TrainObserver};

use super::RunContext;

/// The run's records as an epoch loop's observer: as each epoch but the
/// last ends (or is restored from a checkpoint), its training statistics
/// and validation metrics go to `metrics.jsonl` as one record on the
/// validation split (steps `1..epochs-1`; the stage's final evaluation is
/// step `epochs`), and the progress moves on.
pub(crate) struct EpochObserver<'c, 'a> {
    ctx: &'c mut RunContext<'a>,
    method: &'static str,
    /// The last epoch's log, run or restored.
    pub(crate) last: Option<StepLog>,
}

impl<'c, 'a> EpochObserver<'c, 'a> {
    pub(crate) fn new(ctx: &'c mut RunContext<'a>, method: &'static str) -> Self {
        Self {
            ctx,
            method,
            last: None,
        }
    }
}

/// An epoch's training statistics and its validation metrics, by name.
pub(crate) fn epoch_metrics(log: &StepLog) -> BTreeMap<String, Option<f64>> {
    let mut metrics: BTreeMap<String, Option<f64>> = log
        .evals
        .iter()
        .filter(|e| e.split == SplitName::Val)
        .flat_map(|e| e.metrics.clone())
        .collect();
    metrics.extend(log.train.iter().map(|(k, v)| (k.clone(), Some(*v))));
    metrics
}

impl TrainObserver for EpochObserver<'_, '_> {
    /// The learner scores its own evaluations; nothing to add.
    fn evaluate(
        &mut self,
        _: usize,
        _: SplitName,
        _: &[FinalList],
    ) -> Result<BTreeMap<String, Option<f64>>, ObserverError> {
        Ok(BTreeMap::new())
    }

    fn step(&mut self, log: &StepLog, total: usize) -> Result<(), ObserverError> {
        if log.step < total {
            self.ctx.append_metrics(&[MetricsRecord::new(
                log.step as u64,
                SplitName::Val.to_string(),
                self.method,
                epoch_metrics(log),
            )])?;
        }
        self.ctx.progress(log.step as u64, total as u64)?;
        self.last = Some(log.clone());
        Ok(())
    }
}

/// The checkpoint of a stage's second loop named `part` (a cross-fitted
/// fold's classifier), beside the stage's own: `02-classifier.ckpt` gives
/// `02-classifier.fold-1.ckpt`.
pub(crate) fn part_checkpoint(checkpoint: &Path, part: &str) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    checkpoint.with_file_name(format!("{stem}.{part}.ckpt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_sits_beside_the_stage_checkpoint() {
        assert_eq!(
            part_checkpoint(Path::new("run/checkpoints/02-classifier.ckpt"), "fold-1"),
            Path::new("run/checkpoints/02-classifier.fold-1.ckpt")
        );
    }
}
