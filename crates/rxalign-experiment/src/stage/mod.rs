//! Stages: the steps of a run, in the order the file lists them. Each stage
//! adds methods: it scores them on the evaluation splits, keeps trajectories
//! and the test predictions, and adds them to the summary.

mod baselines;
mod classifier;
mod grpo;
mod references;
mod sft;
mod start_from;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use rxalign_core::metrics::MetricReport;
use rxalign_core::run::{MetricsRecord, RunFolder, Summary};
use rxalign_core::{Cohort, Predictions, Rng, Split, SplitName, Trajectory};
use rxalign_env::trajectory::replay_edits;
use rxalign_env::{Episode, Reward, StartList};

pub use baselines::{BaselinesConfig, BaselinesStage};
pub use classifier::ClassifierStage;
pub use grpo::GrpoStage;
pub use references::ReferencesStage;
pub use sft::SftStage;
pub use start_from::{StartFromConfig, StartFromStage};

use crate::ExperimentError;
use crate::data::LoadedData;
use crate::schema::EvalSettings;

/// A stage plugin.
pub trait Stage: Send + Sync + fmt::Debug {
    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError>;
}

/// What a stage works with and writes to.
#[derive(Debug)]
pub struct RunContext<'a> {
    pub data: &'a LoadedData,
    pub split: &'a Split,
    pub reward: &'a Reward,
    /// Where episodes start; a `start_from` stage may replace it.
    pub start: std::sync::Arc<dyn StartList>,
    /// Each recorded method's predictions, for later stages.
    pub outputs: std::collections::HashMap<String, Predictions>,
    pub eval: &'a EvalSettings,
    pub folder: &'a RunFolder,
    pub rng: &'a mut Rng,
    /// The run's seed, for stages that seed a backend of their own.
    pub seed: u64,
    /// The SFT list policy, once the `sft` stage ran: the start and the KL
    /// reference of the GRPO stages.
    /// With its decoding budget.
    pub sft: Option<(
        rxalign_policy::list::ListPolicy<rxalign_policy::CpuTrainBackend>,
        usize,
    )>,
    pub summary: Summary,
    pub trajectories: Vec<Trajectory>,
}

impl RunContext<'_> {
    pub fn cohort(&self) -> &Cohort {
        &self.data.cohort
    }

    /// Scores a method's predictions on every evaluation split, writes its
    /// metrics (appended at once, so an interruption keeps them), its test
    /// predictions and the trajectories of the first test visits, and adds
    /// its test metrics to the summary.
    ///
    /// Besides every metric, each record holds the mean weighted reward
    /// terms of the final lists (`reward/<term>`) and the mean outcome
    /// reward from the start list (`reward/outcome`).
    pub fn record_method(
        &mut self,
        method: &str,
        step: u64,
        predictions: &Predictions,
    ) -> Result<MetricReport, ExperimentError> {
        self.record_method_with(method, step, predictions, None)
    }

    /// [`Self::record_method`], keeping the given trajectories (a policy's
    /// own decoded steps) instead of replaying the canonical edits.
    pub fn record_method_with(
        &mut self,
        method: &str,
        step: u64,
        predictions: &Predictions,
        trajectories: Option<Vec<Trajectory>>,
    ) -> Result<MetricReport, ExperimentError> {
        let data = self.data;
        let cohort = &data.cohort;
        let mut test_report = None;
        let mut records = Vec::new();
        for name in self.eval.split_names()? {
            let visits = self.split.indices(name, cohort.visits.len());
            let keep: HashSet<usize> = visits.iter().copied().collect();
            let report = predictions.evaluate(cohort, |i| keep.contains(&i));
            let mut metrics: BTreeMap<String, Option<f64>> =
                report.values.iter().map(|v| (v.name.clone(), v.value)).collect();
            for (term, value) in self.reward_terms(&visits, predictions)? {
                metrics.insert(format!("reward/{term}"), value);
            }
            records.push(MetricsRecord {
                step,
                split: name.to_string(),
                method: method.to_string(),
                metrics,
            });
            if name == SplitName::Test {
                test_report = Some(report);
            }
        }
        self.folder.append_metrics(&records)?;
        let test = self.split.indices(SplitName::Test, cohort.visits.len());
        let file_records: Vec<_> = test
            .iter()
            .filter_map(|&i| {
                predictions
                    .by_visit
                    .get(&i)
                    .map(|p| p.to_record(&cohort.visits[i].visit_id, &cohort.drugs))
            })
            .collect();
        let dir = self.folder.root().join("predictions");
        std::fs::create_dir_all(&dir).map_err(|e| rxalign_core::CoreError::io(&dir, e))?;
        Predictions::write(&dir.join(format!("{method}.jsonl")), &file_records)?;
        if let Some(own) = trajectories {
            self.trajectories.extend(own);
        } else {
            for &i in test.iter().take(self.eval.trajectories) {
                let Some(p) = predictions.by_visit.get(&i) else {
                    continue;
                };
                let start = self.start.clone().start(cohort, i, self.rng)?;
                self.trajectories.push(replay_edits(
                    cohort,
                    i,
                    self.reward,
                    start,
                    &p.drugs,
                    method,
                    "test",
                )?);
            }
        }
        let report = test_report.unwrap_or_else(|| predictions.evaluate(cohort, |i| test.contains(&i)));
        self.summary.insert(method.to_string(), report.to_json());
        self.outputs.insert(method.to_string(), predictions.clone());
        Ok(report)
    }

    /// The mean over `visits` of each weighted reward term of the predicted
    /// list, and of the outcome reward from the start list.
    fn reward_terms(
        &mut self,
        visits: &[usize],
        predictions: &Predictions,
    ) -> Result<Vec<(String, Option<f64>)>, ExperimentError> {
        let data = self.data;
        let cohort = &data.cohort;
        let names = self.reward.names();
        let mut sums = vec![0.0; names.len()];
        let (mut outcome, mut n) = (0.0, 0usize);
        for &i in visits {
            let Some(p) = predictions.by_visit.get(&i) else {
                continue;
            };
            let truth = &cohort.visits[i].drugs;
            let end = Episode::new(self.reward, truth, &cohort.ddi, p.drugs.clone(), 0);
            for (s, t) in sums.iter_mut().zip(end.terms()) {
                *s += t;
            }
            let start = self.start.clone().start(cohort, i, self.rng)?;
            outcome += end.potential() - Episode::new(self.reward, truth, &cohort.ddi, start, 0).potential();
            n += 1;
        }
        let mean = |x: f64| (n > 0).then(|| x / n as f64);
        let mut out: Vec<(String, Option<f64>)> = names.into_iter().zip(sums.into_iter().map(mean)).collect();
        out.push(("outcome".into(), mean(outcome)));
        Ok(out)
    }
}
