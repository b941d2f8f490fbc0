//! Stages: the steps of a run, in the order the file lists them. Each stage
//! adds methods: it scores them on the evaluation splits, keeps trajectories
//! and the test predictions, and adds them to the summary.

mod baselines;
mod classifier;
mod grpo;
mod policy;
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
use crate::logger::RunLogger;
use crate::schema::EvalSettings;

/// A stage plugin.
pub trait Stage: Send + Sync + fmt::Debug {
    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError>;

    /// What the stage needs from the stages before it and gives to those
    /// after it, checked before anything trains (a stage of a researcher's
    /// own that says nothing is taken to need nothing and to record any
    /// method).
    fn contract(&self) -> Contract {
        Contract::default()
    }
}

/// A stage's needs and gifts (see [`Stage::contract`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contract {
    /// Starts from the policy of an earlier `sft` stage.
    pub needs_policy: bool,
    /// Trains a policy from scratch that later stages start from (SFT).
    pub trains_policy: bool,
    /// Reads the predictions of these methods.
    pub needs_methods: Vec<String>,
    /// The methods it records; `None`: not known before it runs.
    pub records: Option<Vec<String>>,
}

/// What a stage works with and writes to.
#[derive(Debug)]
pub struct RunContext<'a> {
    pub data: &'a LoadedData,
    pub split: &'a Split,
    pub reward: &'a Reward,
    /// The learned methods' features: codes, previous drugs and, where the
    /// run reads notes, note tokens.
    pub features: rxalign_policy::classifier::VisitFeatures,
    /// Where episodes start; a `start_from` stage may replace it.
    pub start: std::sync::Arc<dyn StartList>,
    /// Each recorded method's predictions, for later stages.
    pub outputs: std::collections::HashMap<String, Predictions>,
    pub eval: &'a EvalSettings,
    pub folder: &'a RunFolder,
    pub rng: &'a mut Rng,
    /// The run's seed, for stages that seed a backend of their own.
    pub seed: u64,
    /// Where the learned methods train (`cpu`, or `cuda:N` in a CUDA build).
    pub device: rxalign_policy::device::TrainDevice,
    /// The run's policy family (the file's `policy`), built on its data.
    pub policy: std::sync::Arc<dyn rxalign_train::plugin::TrainablePolicy>,
    /// The checkpoint of the last SFT stage: the start and frozen reference
    /// of every GRPO stage after it (so that `grpo` and `step_grpo` side by
    /// side align the same SFT policy).
    pub sft: Option<std::path::PathBuf>,
    pub summary: Summary,
    pub trajectories: Vec<Trajectory>,
    /// Where the running stage keeps its checkpoint
    /// (`checkpoints/<index>-<kind>.ckpt` in the run folder).
    pub checkpoint: std::path::PathBuf,
    /// The run's loggers (TensorBoard, ...), fed with every record.
    pub loggers: Vec<Box<dyn RunLogger>>,
}

impl RunContext<'_> {
    pub fn cohort(&self) -> &Cohort {
        &self.data.cohort
    }

    /// Appends records to `metrics.jsonl` and hands them to every logger.
    pub fn append_metrics(&mut self, records: &[MetricsRecord]) -> Result<(), ExperimentError> {
        self.folder.append_metrics(records)?;
        for logger in &mut self.loggers {
            logger.metrics(records)?;
        }
        Ok(())
    }

    /// A histogram for every logger.
    pub fn log_histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> Result<(), ExperimentError> {
        for logger in &mut self.loggers {
            logger.histogram(tag, step, values)?;
        }
        Ok(())
    }

    /// A Markdown text for every logger.
    pub fn log_text(&mut self, tag: &str, step: u64, markdown: &str) -> Result<(), ExperimentError> {
        for logger in &mut self.loggers {
            logger.text(tag, step, markdown)?;
        }
        Ok(())
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
            let sizes: Vec<f64> = visits
                .iter()
                .filter_map(|v| predictions.by_visit.get(v).map(|p| p.drugs.len() as f64))
                .collect();
            self.log_histogram(
                &crate::logger::metric_tag(method, &name.to_string(), "list_size"),
                step,
                &sizes,
            )?;
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
        self.append_metrics(&records)?;
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
        let kept_from = self.trajectories.len();
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
        let markdown = trajectories_markdown(&self.trajectories[kept_from..]);
        if !markdown.is_empty() {
            self.log_text(
                &crate::logger::metric_tag(method, "test", "trajectories"),
                step,
                &markdown,
            )?;
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

/// Trajectories as Markdown: per visit, a table of its steps (action,
/// probability, step reward and its terms, the list after the step).
pub fn trajectories_markdown(trajectories: &[Trajectory]) -> String {
    let mut out = String::new();
    for t in trajectories {
        out.push_str(&format!(
            "**visit {}** (patient {}, {} split): start [{}], ground truth [{}], final [{}], outcome reward {:+.4}{}\n\n",
            t.visit_id,
            t.patient_id,
            t.split,
            t.start.join(", "),
            t.ground_truth.join(", "),
            t.final_list.join(", "),
            t.outcome_reward,
            if t.truncated { ", cut by the step budget" } else { "" },
        ));
        let terms: Vec<&String> = t
            .steps
            .first()
            .map(|s| s.terms.keys().collect())
            .unwrap_or_default();
        out.push_str("| step | action | probability | reward |");
        for term in &terms {
            out.push_str(&format!(" {term} |"));
        }
        out.push_str(" list after |\n|---|---|---|---|");
        out.push_str(&"---|".repeat(terms.len()));
        out.push_str("---|\n");
        for (k, s) in t.steps.iter().enumerate() {
            let action = match &s.action {
                rxalign_core::trajectory::ActionRecord::Add(d) => format!("add {d}"),
                rxalign_core::trajectory::ActionRecord::Remove(d) => format!("remove {d}"),
                rxalign_core::trajectory::ActionRecord::Stop => "stop".to_string(),
                rxalign_core::trajectory::ActionRecord::Unrecognized(line) => {
                    format!("unrecognised `{line}`")
                }
            };
            let p = s.probability.map_or("n/a".to_string(), |p| format!("{p:.3}"));
            out.push_str(&format!("| {} | {action} | {p} | {:+.4} |", k + 1, s.reward));
            for term in &terms {
                out.push_str(&format!(" {:+.4} |", s.terms.get(*term).copied().unwrap_or(0.0)));
            }
            out.push_str(&format!(" {} |\n", s.list.join(", ")));
        }
        out.push('\n');
    }
    out
}
