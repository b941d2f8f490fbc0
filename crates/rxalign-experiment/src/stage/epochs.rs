//! What the classifier and LAMO stages share: the observer of their
//! training loop (`rxalign_train::learner`), whose step is an epoch scored
//! on the validation visits by the learner itself.

use std::collections::BTreeMap;

use rxalign_core::SplitName;
use rxalign_core::metrics::MetricReport;
use rxalign_core::run::MetricsRecord;
use rxalign_train::observer::{Evaluation, ObserverError, StepLog, TrainObserver};

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

/// The validation evaluation of an epoch: the metrics of the lists at
/// threshold 0.5, with `more`, and the `outcome` the loop's selection
/// compares (where it compares one).
pub(crate) fn val_evaluation(
    report: &MetricReport,
    more: impl IntoIterator<Item = (String, Option<f64>)>,
    outcome: Option<f64>,
) -> Evaluation {
    let mut metrics: BTreeMap<String, Option<f64>> =
        report.values.iter().map(|v| (v.name.clone(), v.value)).collect();
    metrics.insert("threshold".into(), Some(0.5));
    metrics.extend(more);
    Evaluation {
        split: SplitName::Val,
        metrics,
        outcome,
    }
}

/// The learner scores its own evaluations: the observer's default
/// `evaluate` (nothing) is never asked.
impl TrainObserver for EpochObserver<'_, '_> {
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
