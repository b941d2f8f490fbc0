//! Stages: the steps of a run, in the order the file lists them. Each stage
//! adds methods: it scores them on the evaluation splits, keeps trajectories
//! and the test predictions, and adds them to the summary.

pub mod artifact;
mod baselines;
mod classifier;
mod epochs;
mod grpo;
mod headroom;
mod lamo;
mod policy;
mod references;
mod sft;
mod start_from;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use rxalign_core::metrics::MetricReport;
use rxalign_core::run::{MetricsRecord, RunFolder, StageRef, SummaryRecord};
use rxalign_core::{Cohort, DrugSet, Predictions, Rng, Split, SplitName, Trajectory, Vocab};
use rxalign_env::trajectory::replay_edits;
use rxalign_env::{Episode, Reward, StartList};

pub use artifact::{Artifact, ArtifactId, Artifacts, Need, PolicyCheckpoint};
pub use baselines::{BaselinesConfig, BaselinesStage};
pub use classifier::ClassifierStage;
pub use grpo::GrpoStage;
pub use headroom::{HeadroomConfig, HeadroomStage};
pub use lamo::LamoStage;
pub use references::ReferencesStage;
pub use sft::SftStage;
pub use start_from::{StartFromConfig, StartFromStage};

use crate::ExperimentError;
use crate::data::LoadedData;
use crate::logger::RunLogger;
use crate::runner::RunTracker;
use crate::schema::EvalSettings;

/// A stage plugin.
///
/// Metrics a policy's decoding measured, per visit, by name.
pub type PerVisitMetrics = BTreeMap<usize, BTreeMap<String, f64>>;

/// A stage reports its steps with [`RunContext::progress`] and appends its
/// training and validation statistics with [`RunContext::append_metrics`]
/// as they happen (once per epoch or iteration), so that readers of the run
/// folder follow it live. An error it returns fails its run (recorded in
/// `run.json`); the other runs of the experiment go on.
pub trait Stage: Send + Sync + fmt::Debug {
    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError>;

    /// The plugin kind, as experiment files name it.
    fn kind(&self) -> &str;

    /// The method name the stage's rows carry (its kind, unless it says
    /// otherwise), listed in `run.json` before the stage runs.
    fn method(&self) -> &str {
        self.kind()
    }

    /// What the stage needs from the stages before it and gives to those
    /// after it, checked before anything trains (a stage of a researcher's
    /// own that says nothing is taken to need nothing and to record any
    /// method).
    fn contract(&self) -> Contract {
        Contract::default()
    }
}

/// A stage's needs and gifts (see [`Stage::contract`]), as named
/// artifacts (see [`artifact`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contract {
    /// The artifacts it reads, each given by a stage before it: a method's
    /// [`Predictions`] (`start_from`), the [`PolicyCheckpoint`] it starts
    /// from (`grpo`), a kind of a researcher's own.
    pub needs: Vec<Need>,
    /// The methods it records; each method's predictions are an artifact
    /// of that name. `None`: not known before it runs (nothing is then
    /// checked of the stages after it).
    pub records: Option<Vec<String>>,
    /// The artifacts it gives besides its methods' predictions (`sft`: its
    /// policy checkpoint), each named by its method.
    pub gives: Vec<ArtifactId>,
}

/// What a stage works with and writes to.
#[derive(Debug)]
pub struct RunContext<'a> {
    /// The run's data: its cohort, and the synthetic clinic where it is one.
    pub data: &'a LoadedData,
    /// The split of the visits into train, validation and test (by patient).
    pub split: &'a Split,
    /// The file's reward: the weighted list potential.
    pub reward: &'a Reward,
    /// The learned methods' features: codes, previous drugs and, where the
    /// run reads notes, note tokens.
    pub features: rxalign_policy::features::VisitFeatures,
    /// Where episodes start; a `start_from` stage may replace it.
    pub start: std::sync::Arc<dyn StartList>,
    /// What the stages so far handed on, by kind and name: every recorded
    /// method's [`Predictions`], `sft`'s [`PolicyCheckpoint`], a
    /// researcher's own kinds (see [`Contract`]).
    pub artifacts: Artifacts,
    /// The file's `eval`: which splits are scored, how many trajectories kept.
    pub eval: &'a EvalSettings,
    /// The run's folder (its files are written through it).
    pub folder: &'a RunFolder,
    /// The run's seeded generator: every random choice draws from it.
    pub rng: &'a mut Rng,
    /// The run's seed, for stages that seed a backend of their own.
    pub seed: u64,
    /// Where the learned methods train (`cpu`, or `cuda:N` in a CUDA
    /// build): SFT and GRPO shard their batches over all of them (the
    /// file's `devices`, data parallel), or the file's `device` alone; the
    /// classifier, LAMO and every evaluation run on the first
    /// (`devices.first()`).
    pub devices: rxalign_policy::device::TrainDevices,
    /// The run's policy family (the file's `policy`), built on its data.
    pub policy: std::sync::Arc<dyn rxalign_train::plugin::TrainablePolicy>,
    /// The final metrics recorded so far (`summary.json` when the run ends).
    pub summary: SummaryRecord,
    /// The inspected visits' trajectories recorded so far.
    pub trajectories: Vec<Trajectory>,
    /// Where the running stage keeps its checkpoint
    /// (`checkpoints/<index>-<kind>.ckpt` in the run folder).
    pub checkpoint: std::path::PathBuf,
    /// The run's loggers (TensorBoard, ...), fed with every record.
    pub loggers: Vec<Box<dyn RunLogger>>,
    /// The running stage (index and method), stamped on its records.
    pub stage: Option<StageRef>,
    /// `run.json` and the progress display.
    pub(crate) tracker: RunTracker<'a>,
    /// Methods with a curve (a record past step 0, or on the training
    /// split): their records go to the loggers as scalars; one-off
    /// evaluations of the others stay in `metrics.jsonl`, the summary and
    /// the HParams (no one-point charts).
    pub(crate) curves: HashSet<String>,
}

impl RunContext<'_> {
    /// The run's cohort.
    pub fn cohort(&self) -> &Cohort {
        &self.data.cohort
    }

    /// Appends records to `metrics.jsonl` at once (call it as they happen:
    /// once per epoch or iteration) and hands them to every logger. Records
    /// without a stage or a time get the running stage's and now.
    pub fn append_metrics(&mut self, records: &[MetricsRecord]) -> Result<(), ExperimentError> {
        let now = jiff::Timestamp::now();
        let stamped: Vec<MetricsRecord> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.stage.is_none() {
                    r.stage = self.stage.clone();
                }
                if r.time.is_none() {
                    r.time = Some(now);
                }
                r
            })
            .collect();
        self.folder.append_metrics(&stamped)?;
        for r in &stamped {
            if r.step > 0 || r.split == "train" {
                self.curves.insert(r.method.clone());
            }
        }
        let charted: Vec<MetricsRecord> = stamped
            .into_iter()
            .filter(|r| self.curves.contains(&r.method))
            .collect();
        if !charted.is_empty() {
            for logger in &mut self.loggers {
                logger.metrics(&charted)?;
            }
        }
        Ok(())
    }

    /// Reports that the running stage has done `step` of `total` steps
    /// (epochs, iterations): updates `run.json` (at a bounded rate) and the
    /// progress display. Call it once per epoch or iteration.
    pub fn progress(&mut self, step: u64, total: u64) -> Result<(), ExperimentError> {
        self.tracker.progress(step, total)
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
        self.record_method_with(method, step, predictions, None, &PerVisitMetrics::new())
    }

    /// [`Self::record_method`], keeping the given trajectories (a policy's
    /// own decoded steps) instead of replaying the canonical edits, and
    /// with metrics the decoding measured per visit (`per_visit`: each is
    /// averaged over a split's visits that have it, like every metric).
    pub fn record_method_with(
        &mut self,
        method: &str,
        step: u64,
        predictions: &Predictions,
        trajectories: Option<Vec<Trajectory>>,
        per_visit: &PerVisitMetrics,
    ) -> Result<MetricReport, ExperimentError> {
        self.record_method_from(method, step, predictions, trajectories, per_visit, None)
    }

    /// [`Self::record_method_with`], given the start list each visit's
    /// list was decoded from (by visit index), so that the summary's net
    /// edits per drug (`edits`) count from those; without them they count
    /// from the start lists drawn for the outcome reward.
    pub fn record_method_from(
        &mut self,
        method: &str,
        step: u64,
        predictions: &Predictions,
        trajectories: Option<Vec<Trajectory>>,
        per_visit: &PerVisitMetrics,
        starts: Option<&std::collections::HashMap<usize, DrugSet>>,
    ) -> Result<MetricReport, ExperimentError> {
        let data = self.data;
        let mut edits = None;
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
            let (terms, drawn) = self.reward_terms(&visits, predictions)?;
            for (term, value) in terms {
                metrics.insert(format!("reward/{term}"), value);
            }
            let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
            for m in visits.iter().filter_map(|v| per_visit.get(v)) {
                for (name, value) in m {
                    let e = sums.entry(name.as_str()).or_default();
                    e.0 += value;
                    e.1 += 1;
                }
            }
            for (name, (sum, count)) in sums {
                metrics.insert(name.to_string(), Some(sum / count as f64));
            }
            if name == SplitName::Test {
                let counted = net_edits(cohort, self.reward, predictions, &drawn, starts);
                // A method that starts from a list: how well it edits.
                if let Some(lists) = &counted.lists {
                    for (name, value) in lists.metrics() {
                        metrics.insert(name.to_string(), value);
                    }
                }
                test_report = Some(report);
                edits = Some(counted);
            }
            records.push(MetricsRecord::new(step, name.to_string(), method, metrics));
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
        let dir = self.folder.predictions();
        std::fs::create_dir_all(&dir).map_err(|e| rxalign_core::CoreError::io(&dir, e))?;
        Predictions::write(&self.folder.predictions_of(method), &file_records)?;
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
        let markdown = trajectories_markdown(&self.trajectories[kept_from..], &cohort.drugs);
        if !markdown.is_empty() {
            self.log_text(
                &crate::logger::metric_tag(method, "test", "trajectories"),
                step,
                &markdown,
            )?;
        }
        let covered = test
            .iter()
            .filter(|i| predictions.by_visit.contains_key(i))
            .count();
        if covered < test.len() {
            return Err(ExperimentError::Invalid(format!(
                "method `{method}` has lists for {covered} of the {} test visits; its test metrics would describe those only (is `test` in eval.splits?)",
                test.len()
            )));
        }
        let report = test_report.unwrap_or_else(|| predictions.evaluate(cohort, |i| test.contains(&i)));
        let mut summary: BTreeMap<String, Option<f64>> =
            report.values.iter().map(|v| (v.name.clone(), v.value)).collect();
        if let Some(counted) = edits.as_ref()
            && let Some(lists) = &counted.lists
        {
            summary.extend(lists.metrics().into_iter().map(|(n, v)| (n.to_string(), v)));
            self.log_text(
                &crate::logger::metric_tag(method, "test", "edits"),
                step,
                &format!(
                    "{}\n{}",
                    edits_markdown(method, lists),
                    drug_edits_markdown(counted, &cohort.drugs)
                ),
            )?;
        }
        self.summary
            .insert(method, self.stage.clone(), report.visits, summary);
        let test_visits: HashSet<usize> = test.iter().copied().collect();
        self.summary.set_per_patient(
            method,
            predictions.evaluate_per_patient(cohort, |i| test_visits.contains(&i)),
        );
        if let Some(edits) = edits {
            self.summary.set_edits(method, edits);
        }
        self.artifacts.give(method, predictions.clone());
        Ok(report)
    }

    /// The mean over `visits` of each weighted reward term of the predicted
    /// list, and of the outcome reward from the start list; and the start
    /// list drawn for each visit with a list.
    fn reward_terms(
        &mut self,
        visits: &[usize],
        predictions: &Predictions,
    ) -> Result<(TermMeans, StartsDrawn), ExperimentError> {
        let data = self.data;
        let cohort = &data.cohort;
        let listed: Vec<(usize, &DrugSet)> = visits
            .iter()
            .filter_map(|&i| predictions.by_visit.get(&i).map(|p| (i, &p.drugs)))
            .collect();
        let mut out = mean_terms(self.reward, cohort, &listed);
        let mut outcome = 0.0;
        let mut drawn = Vec::with_capacity(listed.len());
        for &(i, list) in &listed {
            let truth = &cohort.visits[i].drugs;
            let start = self.start.clone().start(cohort, i, self.rng)?;
            outcome += Episode::new(self.reward, truth, &cohort.ddi, list.clone(), 0).potential()
                - Episode::new(self.reward, truth, &cohort.ddi, start.clone(), 0).potential();
            drawn.push((i, start));
        }
        let n = listed.len();
        let mean = |x: f64| (n > 0).then(|| x / n as f64);
        out.push(("outcome".into(), mean(outcome)));
        Ok((out, drawn))
    }
}

/// Each reward term's mean by name (`None` for no list).
type TermMeans = Vec<(String, Option<f64>)>;

/// The start list drawn for each visit (visit index, list).
type StartsDrawn = Vec<(usize, DrugSet)>;

/// The net edits per drug of a method's lists on the test visits `drawn`
/// (visit, start list drawn for the outcome reward), counted from the
/// given `starts` where a visit has one. Given `starts` (a method that
/// starts from a list), the lists are counted too, each with its outcome
/// reward from its start list (the `edit/...` metrics).
fn net_edits(
    cohort: &Cohort,
    reward: &Reward,
    predictions: &Predictions,
    drawn: &[(usize, DrugSet)],
    starts: Option<&std::collections::HashMap<usize, DrugSet>>,
) -> rxalign_core::run::EditCounts {
    use rxalign_core::run::EditCounts;
    let split = SplitName::Test.to_string();
    let mut edits = match starts {
        Some(_) => EditCounts::of_editor(split, "the start lists the policy decoded from"),
        None => EditCounts::new(split, "the run's start lists (as drawn for the outcome reward)"),
    };
    for (i, start) in drawn {
        let Some(p) = predictions.by_visit.get(i) else {
            continue;
        };
        let truth = &cohort.visits[*i].drugs;
        let start = starts.and_then(|s| s.get(i)).unwrap_or(start);
        let outcome = starts.is_some().then(|| {
            Episode::new(reward, truth, &cohort.ddi, p.drugs.clone(), 0).potential()
                - Episode::new(reward, truth, &cohort.ddi, start.clone(), 0).potential()
        });
        edits.count(start, &p.drugs, truth, &cohort.drugs, outcome);
    }
    edits
}

/// The edit metrics of a method as a Markdown table: name, value and
/// definition (TensorBoard's text of `<method>/test/edits`).
pub fn edits_markdown(method: &str, lists: &rxalign_core::metrics::ListEdits) -> String {
    let mut out = format!(
        "**{method}**: edits from the start lists it decoded from, over {} test lists\n\n| metric | value | definition |\n|---|---|---|\n",
        lists.visits
    );
    for ((name, value), (_, definition)) in lists
        .metrics()
        .into_iter()
        .zip(rxalign_core::metrics::EDIT_METRICS)
    {
        let value = value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
        out.push_str(&format!("| {name} | {value} | {definition} |\n"));
    }
    out
}

/// FLAME's per-drug figure as a Markdown table: for each drug a method
/// edited, how often it was added and removed, and the share of each that
/// was right (an added drug in the ground truth, a removed one not in it);
/// the drugs edited most first (the rest of TensorBoard's text of
/// `<method>/test/edits`).
pub fn drug_edits_markdown(counted: &rxalign_core::run::EditCounts, drugs: &Vocab) -> String {
    let mut rows: Vec<(&String, &rxalign_core::run::DrugEditCounts)> = counted.drugs.iter().collect();
    let edits = |c: &rxalign_core::run::DrugEditCounts| {
        c.added_right + c.added_wrong + c.removed_right + c.removed_wrong
    };
    rows.sort_by(|a, b| edits(b.1).cmp(&edits(a.1)).then(a.0.cmp(b.0)));
    let share = |right: usize, all: usize| {
        if all == 0 {
            "n/a".to_string()
        } else {
            format!("{right} of {all} ({:.0}%)", 100.0 * right as f64 / all as f64)
        }
    };
    let mut out = format!(
        "Per drug, over the {} test lists: **added** is in the final list and not in the start list, right when in the ground truth; **removed** is in the start list and not in the final list, right when not in the ground truth.\n\n| drug | added | added right | removed | removed right |\n|---|---|---|---|---|\n",
        counted.visits
    );
    if rows.is_empty() {
        out.push_str("| (no drug edited) | 0 | n/a | 0 | n/a |\n");
    }
    for (code, c) in rows {
        let name = drugs
            .get(code)
            .map_or_else(|| code.clone(), |i| format!("{code} ({})", drugs.name(i)));
        let (added, removed) = (c.added_right + c.added_wrong, c.removed_right + c.removed_wrong);
        out.push_str(&format!(
            "| {name} | {added} | {} | {removed} | {} |\n",
            share(c.added_right, added),
            share(c.removed_right, removed)
        ));
    }
    out
}

/// The mean over `lists` (visit, final list) of each weighted reward term
/// of the final list, by the reward's term names (`None` for no list).
pub(crate) fn mean_terms(
    reward: &Reward,
    cohort: &Cohort,
    lists: &[(usize, &DrugSet)],
) -> Vec<(String, Option<f64>)> {
    let names = reward.names();
    let mut sums = vec![0.0; names.len()];
    for &(i, list) in lists {
        let end = Episode::new(reward, &cohort.visits[i].drugs, &cohort.ddi, list.clone(), 0);
        for (s, t) in sums.iter_mut().zip(end.terms()) {
            *s += t;
        }
    }
    let n = lists.len();
    let mean = |x: f64| (n > 0).then(|| x / n as f64);
    names.into_iter().zip(sums.into_iter().map(mean)).collect()
}

/// Trajectories as Markdown: per visit, a table of its steps (action,
/// probability, step reward and its terms, the list after the step), each
/// drug as `code (name)`.
pub fn trajectories_markdown(trajectories: &[Trajectory], drugs: &Vocab) -> String {
    let name = |code: &str| match drugs.get(code).map(|i| drugs.name(i)) {
        Some(n) if !n.is_empty() && n != code => format!("{code} ({n})"),
        _ => code.to_string(),
    };
    let names = |codes: &[String]| codes.iter().map(|c| name(c)).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for t in trajectories {
        out.push_str(&format!(
            "**visit {}** (patient {}, {} split, {}): start [{}], ground truth [{}], final [{}], start potential {:+.4}, outcome reward {:+.4}{}\n\n",
            t.visit_id,
            t.patient_id,
            t.split,
            match t.source {
                rxalign_core::trajectory::TrajectorySource::Decoded => "the policy's own decoding",
                rxalign_core::trajectory::TrajectorySource::Replayed => "canonical edits replayed to the method's list",
            },
            names(&t.start),
            names(&t.ground_truth),
            names(&t.final_list),
            t.start_potential,
            t.outcome_reward,
            if t.truncated { ", cut by the step budget" } else { "" },
        ));
        let terms: Vec<&String> = t
            .steps
            .first()
            .map(|s| s.terms.keys().collect())
            .unwrap_or_default();
        // A generative policy's steps keep what it wrote.
        let written = t.steps.iter().any(|s| s.text.is_some());
        out.push_str(if written {
            "| step | action | written | probability | reward |"
        } else {
            "| step | action | probability | reward |"
        });
        for term in &terms {
            out.push_str(&format!(" {term} |"));
        }
        out.push_str(if written {
            " list after |\n|---|---|---|---|---|"
        } else {
            " list after |\n|---|---|---|---|"
        });
        out.push_str(&"---|".repeat(terms.len()));
        out.push_str("---|\n");
        for (k, s) in t.steps.iter().enumerate() {
            let action = match &s.action {
                rxalign_core::trajectory::ActionRecord::Add(d) => format!("add {}", name(d)),
                rxalign_core::trajectory::ActionRecord::Remove(d) => format!("remove {}", name(d)),
                rxalign_core::trajectory::ActionRecord::Stop => "stop".to_string(),
                rxalign_core::trajectory::ActionRecord::Unrecognized(line) => {
                    format!("unrecognised `{line}`")
                }
            };
            let mut p = s.probability.map_or("n/a".to_string(), |p| format!("{p:.3}"));
            if !s.part_probabilities.is_empty() {
                let parts: Vec<String> = s.part_probabilities.iter().map(|q| format!("{q:.2}")).collect();
                p.push_str(&format!(" (tokens {})", parts.join(" · ")));
            }
            if written {
                let text = s
                    .text
                    .as_deref()
                    .unwrap_or("")
                    .replace('|', "\\|")
                    .replace('`', "'");
                out.push_str(&format!(
                    "| {} | {action} | `{text}` | {p} | {:+.4} |",
                    k + 1,
                    s.reward
                ));
            } else {
                out.push_str(&format!("| {} | {action} | {p} | {:+.4} |", k + 1, s.reward));
            }
            for term in &terms {
                out.push_str(&format!(" {:+.4} |", s.terms.get(*term).copied().unwrap_or(0.0)));
            }
            out.push_str(&format!(" {} |\n", names(&s.list)));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use rxalign_core::{DrugSet, Vocab};

    #[test]
    fn the_per_drug_table_counts_each_drugs_edits_with_the_share_right_most_edited_first() {
        let mut drugs = Vocab::new();
        for (code, name) in [("A", "aspirin"), ("B", "bisoprolol"), ("C", "captopril")] {
            drugs.insert(code, name);
        }
        let set = |ix: &[usize]| DrugSet::from_indices(3, ix.iter().copied());
        let mut counted = rxalign_core::run::EditCounts::of_editor("test", "the classifier's lists");
        let truth = set(&[0, 1]);
        // B added rightly twice; C removed rightly once, added wrongly once;
        // A removed wrongly once.
        counted.count(&set(&[0, 2]), &set(&[0, 1]), &truth, &drugs, None);
        counted.count(&set(&[0]), &set(&[0, 1, 2]), &truth, &drugs, None);
        counted.count(&set(&[0, 1]), &set(&[1]), &truth, &drugs, None);
        let text = super::drug_edits_markdown(&counted, &drugs);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| drug"))
            .collect();
        assert_eq!(
            rows,
            [
                "| B (bisoprolol) | 2 | 2 of 2 (100%) | 0 | n/a |",
                "| C (captopril) | 1 | 0 of 1 (0%) | 1 | 1 of 1 (100%) |",
                "| A (aspirin) | 0 | n/a | 1 | 0 of 1 (0%) |",
            ]
        );
        assert!(text.contains("over the 3 test lists"), "{text}");
    }
}
