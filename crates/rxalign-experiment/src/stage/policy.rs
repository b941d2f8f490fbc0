//! What the family-agnostic training stages (`sft`, `grpo`, `step_grpo`)
//! share: the run's records as the trainer's observer, the evaluation
//! visits of the validation curves, and the greedy decoding of a trained
//! policy that is recorded as a method.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rxalign_core::run::MetricsRecord;
use rxalign_core::{DrugSet, Predictions, SplitName};
use rxalign_policy::device::TrainDevices;
use rxalign_policy::family::ActMode;
use rxalign_train::TrainError;
use rxalign_train::data::{PatientPart, training_visits};
use rxalign_train::episodes::GREEDY_BATCH;
use rxalign_train::episodes::{Episodes, Recording};
use rxalign_train::job::Job;
use rxalign_train::observer::{
    EvalPlan, EvalSet, FinalList, ObserverError, StepLog, Throughput, TrainObserver,
};
use rxalign_train::plugin::TrainablePolicy;
use rxalign_train::select::{Select, Selection};

use super::RunContext;
use crate::ExperimentError;

/// The splits of the curves drawn during training: the training patients
/// (what the policy has seen) beside the validation patients (what it has
/// not); the test split is never looked at before training ends.
const CURVE_SPLITS: [SplitName; 2] = [SplitName::Train, SplitName::Val];

/// The evaluation visits of the curves and their start lists (drawn once,
/// before training), every `every` steps.
pub(crate) fn eval_plan(ctx: &mut RunContext<'_>, every: usize) -> Result<EvalPlan, ExperimentError> {
    let cohort = &ctx.data.cohort;
    let mut sets = Vec::new();
    for split in CURVE_SPLITS {
        let visits = ctx.split.indices(split, cohort.visits.len());
        let starts = visits
            .iter()
            .map(|&v| ctx.start.clone().start(cohort, v, ctx.rng))
            .collect::<Result<Vec<DrugSet>, _>>()?;
        sets.push(EvalSet {
            split,
            visits,
            starts,
        });
    }
    Ok(EvalPlan { every, sets })
}

/// The run's records as a training loop's observer: every step's
/// statistics and evaluations appended to `metrics.jsonl` (and the
/// loggers) as they happen, under the stage's method name.
pub(crate) struct StageObserver<'c, 'a> {
    ctx: &'c mut RunContext<'a>,
    method: String,
    /// The model the loop handed on, once it has ended.
    selection: Option<Selection>,
    /// When the last throughput line was shown.
    throughput_shown: Option<std::time::Instant>,
}

/// At most one throughput line a minute after a stage's first.
const THROUGHPUT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl<'c, 'a> StageObserver<'c, 'a> {
    pub(crate) fn new(ctx: &'c mut RunContext<'a>, method: &str) -> Self {
        Self {
            ctx,
            method: method.to_string(),
            selection: None,
            throughput_shown: None,
        }
    }

    /// The step of the model the loop handed on (`planned` where the loop
    /// said nothing): where the stage's final rows are recorded, so that
    /// they sit on the curves at the model they describe.
    pub(crate) fn chosen_step(&self, planned: usize) -> u64 {
        self.selection.as_ref().map_or(planned, |s| s.step) as u64
    }
}

impl TrainObserver for StageObserver<'_, '_> {
    fn evaluate(
        &mut self,
        _: usize,
        _: SplitName,
        lists: &[FinalList],
    ) -> Result<BTreeMap<String, Option<f64>>, ObserverError> {
        let ctx = &self.ctx;
        let cohort = &ctx.data.cohort;
        let predictions: Predictions = lists.iter().map(|f| (f.visit, f.list.clone())).collect();
        let keep: HashSet<usize> = lists.iter().map(|f| f.visit).collect();
        let report = predictions.evaluate(cohort, |i| keep.contains(&i));
        let mut metrics: BTreeMap<String, Option<f64>> =
            report.values.iter().map(|v| (v.name.clone(), v.value)).collect();
        // The weighted reward terms of the final lists, and the outcome
        // reward of the episodes, averaged.
        let listed: Vec<(usize, &DrugSet)> = lists.iter().map(|f| (f.visit, &f.list)).collect();
        for (name, mean) in super::mean_terms(ctx.reward, cohort, &listed) {
            metrics.insert(format!("reward/{name}"), mean);
        }
        let n = lists.len();
        let mean = |x: f64| (n > 0).then(|| x / n as f64);
        metrics.insert(
            "reward/outcome".into(),
            mean(lists.iter().map(|f| f.outcome).sum()),
        );
        Ok(metrics)
    }

    fn step(&mut self, log: &StepLog, total: usize) -> Result<(), ObserverError> {
        let step = log.step as u64;
        let mut records = vec![MetricsRecord::new(
            step,
            SplitName::Train.to_string(),
            &self.method,
            log.train.iter().map(|(k, v)| (k.clone(), Some(*v))).collect(),
        )];
        for eval in &log.evals {
            records.push(MetricsRecord::new(
                step,
                eval.split.to_string(),
                &self.method,
                eval.metrics.clone(),
            ));
        }
        self.ctx.append_metrics(&records)?;
        self.ctx.progress(step, total as u64)?;
        for (name, values) in &log.histograms {
            self.ctx
                .log_histogram(&format!("{}/train/{name}", self.method), step, values)?;
        }
        Ok(())
    }

    /// Shown beside the progress (`rxalign run`'s output), never recorded:
    /// a stage's first iteration, then at most one a minute.
    fn throughput(&mut self, throughput: &Throughput) -> Result<(), ObserverError> {
        if self
            .throughput_shown
            .is_none_or(|t| t.elapsed() >= THROUGHPUT_EVERY)
        {
            self.throughput_shown = Some(std::time::Instant::now());
            self.ctx.tracker.note(&format!("{}: {throughput}", self.method));
        }
        Ok(())
    }

    /// Records the chosen step of a stage that selects by validation
    /// (`selected/step`, `selected/outcome` of the validation split, at the
    /// stage's last step).
    fn selected(&mut self, selection: &Selection) -> Result<(), ObserverError> {
        self.selection = Some(selection.clone());
        if selection.select != Select::Validation {
            return Ok(());
        }
        let mut metrics = BTreeMap::new();
        metrics.insert("selected/step".to_string(), Some(selection.step as f64));
        metrics.insert("selected/outcome".to_string(), selection.outcome);
        metrics.insert(
            "selected/stopped_early".to_string(),
            Some(f64::from(u8::from(selection.stopped_early))),
        );
        self.ctx.append_metrics(&[MetricsRecord::new(
            selection.last as u64,
            SplitName::Val.to_string(),
            &self.method,
            metrics,
        )])?;
        Ok(())
    }
}

/// What an SFT or GRPO stage does around its training: the job (the
/// stage's training patients, the run's start lists, the curves'
/// evaluation visits every `eval_every` steps, the stage's checkpoint), the
/// run's records as the loop's observer, `train` (the family's SFT or
/// GRPO on the run's device), then the trained policy decoded greedily and
/// recorded as `method` at the step the loop handed on (`planned` where it
/// said nothing).
pub(crate) fn train_and_record<S>(
    ctx: &mut RunContext<'_>,
    method: &str,
    settings: &S,
    eval_every: usize,
    patients: PatientPart,
    planned: usize,
    train: impl FnOnce(
        &dyn TrainablePolicy,
        &TrainDevices,
        &Job<'_, S>,
        &mut dyn TrainObserver,
    ) -> Result<(), TrainError>,
) -> Result<(), ExperimentError> {
    let (data, split, reward) = (ctx.data, ctx.split, ctx.reward);
    let cohort = &data.cohort;
    let policy = ctx.policy.clone();
    let eval = eval_plan(ctx, eval_every)?;
    let start = ctx.start.clone();
    let starts =
        |v: usize, rng: &mut rxalign_core::Rng| start.start(cohort, v, rng).map_err(|e| e.to_string());
    let checkpoint = ctx.checkpoint.clone();
    let train_visits = training_visits(patients, cohort, &split.train, ctx.seed);
    let job = Job {
        cohort,
        reward,
        train: &train_visits,
        starts: &starts,
        settings,
        budget: policy.budget(),
        seed: ctx.seed,
        checkpoint: Some(&checkpoint),
        eval: &eval,
    };
    let devices = ctx.devices.clone();
    let mut observer = StageObserver::new(ctx, method);
    train(policy.as_ref(), &devices, &job, &mut observer)?;
    let step = observer.chosen_step(planned);
    evaluate_policy(ctx, method, step, &checkpoint)
}

/// Decodes the policy of `checkpoint` greedily from the run's start lists
/// on every evaluation split and records it as `method`, keeping its own
/// trajectories (each step with its probability) for the first test visits.
pub(crate) fn evaluate_policy(
    ctx: &mut RunContext<'_>,
    method: &str,
    step: u64,
    checkpoint: &Path,
) -> Result<(), ExperimentError> {
    let data = ctx.data;
    let cohort = &data.cohort;
    let mut visits = Vec::new();
    for name in ctx.eval.split_names()? {
        visits.extend(ctx.split.indices(name, cohort.visits.len()));
    }
    visits.sort_unstable();
    visits.dedup();
    let starts = visits
        .iter()
        .map(|&v| ctx.start.clone().start(cohort, v, ctx.rng))
        .collect::<Result<Vec<_>, _>>()?;
    let test: HashSet<usize> = ctx
        .split
        .indices(SplitName::Test, cohort.visits.len())
        .into_iter()
        .collect();
    // Every test visit is recorded; the first ones and those where the
    // policy edited (up to the bound) are kept once the lists are known.
    let test_order: Vec<usize> = visits.iter().copied().filter(|v| test.contains(v)).collect();
    let recorded: HashSet<usize> = test_order.iter().copied().collect();
    let policy = ctx.policy.clone();
    let episodes = Episodes {
        cohort,
        reward: ctx.reward,
        budget: policy.budget(),
        mode: ActMode::Greedy,
        max_batch: Some(GREEDY_BATCH),
        record: Some(Recording {
            method,
            split: "test",
            visits: &recorded,
        }),
    };
    let started: std::collections::HashMap<usize, DrugSet> =
        visits.iter().copied().zip(starts.iter().cloned()).collect();
    let decoded = policy.decode(
        ctx.devices.first(),
        checkpoint,
        &episodes,
        visits.iter().copied().zip(starts).collect(),
        ctx.rng,
    )?;
    let predictions: Predictions = decoded.iter().map(|d| (d.visit, d.final_list.clone())).collect();
    // FLAME's refusal rate: the share of a visit's output lines (edits and
    // refusals, not the ends of answers) that name no valid edit; 0 for a
    // visit without lines. Only where the family can refuse.
    let per_visit: super::PerVisitMetrics = if policy.refuses() {
        decoded
            .iter()
            .map(|d| {
                let rate = if d.lines == 0 {
                    0.0
                } else {
                    d.refusals as f64 / d.lines as f64
                };
                (
                    d.visit,
                    [("refusal_rate".to_string(), rate)].into_iter().collect(),
                )
            })
            .collect()
    } else {
        super::PerVisitMetrics::new()
    };
    let edited: HashSet<usize> = decoded
        .iter()
        .filter(|d| started.get(&d.visit).is_some_and(|s| *s != d.final_list))
        .map(|d| d.visit)
        .collect();
    let (keep, record) = kept_visits(
        &test_order,
        &edited,
        ctx.eval.trajectories,
        ctx.eval.edited_trajectories,
    );
    let mut trajectories: std::collections::HashMap<usize, rxalign_core::Trajectory> = decoded
        .into_iter()
        .filter(|d| keep.contains(&d.visit))
        .filter_map(|d| d.trajectory.map(|t| (d.visit, t)))
        .collect();
    // In test order: the first visits, then the edited ones.
    let kept = test_order.iter().filter_map(|v| trajectories.remove(v)).collect();
    ctx.record_method_from(method, step, &predictions, Some(kept), &per_visit, Some(&started))?;
    if let Some(m) = ctx.summary.methods.get_mut(method) {
        m.trajectories = Some(record);
    }
    Ok(())
}

/// The test visits whose trajectories a policy keeps: the first `first` of
/// `test` (in test order), and the `edited` ones, at most `bound` besides
/// those among the first; with the record of what was kept.
pub(crate) fn kept_visits(
    test: &[usize],
    edited: &HashSet<usize>,
    first: usize,
    bound: usize,
) -> (HashSet<usize>, rxalign_core::run::KeptTrajectories) {
    let mut keep: HashSet<usize> = test.iter().copied().take(first).collect();
    let extra: Vec<usize> = test
        .iter()
        .copied()
        .filter(|v| edited.contains(v) && !keep.contains(v))
        .take(bound)
        .collect();
    keep.extend(extra);
    let in_test = test.iter().filter(|v| edited.contains(v)).count();
    let record = rxalign_core::run::KeptTrajectories {
        first,
        edited_bound: bound,
        edited: in_test,
        edited_kept: test
            .iter()
            .filter(|v| edited.contains(v) && keep.contains(v))
            .count(),
    };
    (keep, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_visits_and_the_edited_ones_up_to_the_bound_are_kept() {
        let test = [7, 3, 9, 1, 4, 8];
        let edited: HashSet<usize> = [3, 1, 4, 8].into();
        let (keep, record) = kept_visits(&test, &edited, 2, 2);
        // 7 and 3 are the first; 1 and 4 the next edited ones; 8 is past the bound.
        assert_eq!(keep, [7, 3, 1, 4].into());
        assert_eq!(
            (
                record.edited,
                record.edited_kept,
                record.edited_bound,
                record.first
            ),
            (4, 3, 2, 2)
        );
        assert!(record.describe().contains("1 edited visits have no trajectory"));
        let (all, record) = kept_visits(&test, &edited, 0, 10);
        assert_eq!(all, edited);
        assert_eq!(record.edited_kept, 4);
    }
}
