//! Machine-readable output for scripts: `rxalign compare --format json`
//! ([`CompareReport`]) and `rxalign status --json` ([`StatusReport`]).
//!
//! These types are the documented formats: their JSON Schemas, derived from
//! them, are `docs/compare.schema.json` and `docs/status.schema.json` (a test
//! keeps the files equal to the types). Readers should accept fields added in
//! a later minor version; a new major `format_version` changes the meaning.

use std::collections::BTreeMap;
use std::path::Path;

use rxalign_core::metrics::definitions;
use rxalign_core::run::aggregate::Cell;
use rxalign_core::run::{ExperimentView, FinishedRun, RunEntry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of [`CompareReport`]'s format.
pub const COMPARE_FORMAT: &str = "1.0";
/// The version of [`StatusReport`]'s format.
pub const STATUS_FORMAT: &str = "1.0";

/// `rxalign compare --format json`: one experiment's final test metrics per
/// group (an ablation variant, all its seeds) and method, each summarised
/// over the group's seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareReport {
    /// The version of this format, `MAJOR.MINOR`.
    pub format_version: String,
    /// The experiment's folder, as given to `compare`.
    pub experiment: String,
    /// The split every metric is measured on (each run's `summary.json`).
    pub split: String,
    /// Finished runs summarised.
    pub finished_runs: usize,
    /// Runs left out because they have not finished (planned, running,
    /// interrupted or failed).
    pub unfinished_runs: usize,
    /// The definition of each metric that appears below, by name (metrics
    /// of a researcher's own stage have none).
    pub definitions: BTreeMap<String, String>,
    /// The groups, in the order their first run is found (run folder name).
    pub groups: Vec<GroupReport>,
}

/// One group: the runs of one variant, over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupReport {
    /// The variant and ablation values without the seed (`run.json`'s group).
    pub group: String,
    /// The seeds of its finished runs, ascending.
    pub seeds: Vec<u64>,
    /// Its methods, in the order the runs recorded them.
    pub methods: Vec<MethodReport>,
}

/// One method of a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodReport {
    pub method: String,
    /// Each metric some run of the group defines for the method, by name.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// One metric of a method, over the seeds that define it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSummary {
    /// The mean over seeds of each run's value (itself a per-visit mean
    /// unless the metric's name says pooled).
    pub mean: f64,
    /// The sample standard deviation over seeds (n − 1 in the
    /// denominator); null when `n` is 1.
    pub std: Option<f64>,
    /// How many runs define the metric (a metric undefined in a run, such as
    /// PRAUC without scores, is left out of that run's count).
    pub n: usize,
    /// The seeds of those runs, ascending.
    pub seeds: Vec<u64>,
}

/// One group and method's values: metric -> (seed, value) of each run.
type Samples<'a> = BTreeMap<&'a str, Vec<(u64, f64)>>;

impl CompareReport {
    /// The report of an experiment's finished `runs`; `unfinished` runs are
    /// counted, not summarised. A value that is not finite is left out like
    /// an undefined one (JSON has no NaN).
    pub fn of(experiment: &Path, runs: &[FinishedRun], unfinished: usize) -> Self {
        let known: BTreeMap<String, String> = definitions().into_iter().collect();
        let mut values: BTreeMap<(&str, &str), Samples<'_>> = BTreeMap::new();
        let mut groups: Vec<(&str, Vec<u64>, Vec<&str>)> = Vec::new();
        for run in runs {
            let group = run.record.group.as_str();
            let g = match groups.iter().position(|(g, _, _)| *g == group) {
                Some(i) => i,
                None => {
                    groups.push((group, Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.push(run.record.seed);
            for method in &run.methods {
                if !groups[g].2.contains(&method.as_str()) {
                    groups[g].2.push(method);
                }
                let Some(summary) = run.summary.methods.get(method) else {
                    continue;
                };
                let metrics = values.entry((group, method)).or_default();
                for (name, v) in &summary.metrics {
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        metrics.entry(name).or_default().push((run.record.seed, v));
                    }
                }
            }
        }
        let mut used = std::collections::BTreeSet::new();
        let groups = groups
            .into_iter()
            .map(|(group, mut seeds, methods)| {
                seeds.sort_unstable();
                let methods = methods
                    .into_iter()
                    .map(|method| {
                        let metrics = values
                            .get(&(group, method))
                            .into_iter()
                            .flatten()
                            .filter_map(|(&name, samples)| {
                                let mut samples = samples.clone();
                                samples.sort_by_key(|(seed, _)| *seed);
                                let xs: Vec<f64> = samples.iter().map(|(_, v)| *v).collect();
                                let cell = Cell::of(&xs)?;
                                used.insert(name);
                                Some((
                                    name.to_string(),
                                    MetricSummary {
                                        mean: cell.mean,
                                        std: (cell.n > 1).then_some(cell.std),
                                        n: cell.n,
                                        seeds: samples.iter().map(|(s, _)| *s).collect(),
                                    },
                                ))
                            })
                            .collect();
                        MethodReport {
                            method: method.to_string(),
                            metrics,
                        }
                    })
                    .collect();
                GroupReport {
                    group: group.to_string(),
                    seeds,
                    methods,
                }
            })
            .collect();
        let split = runs
            .first()
            .map_or_else(|| "test".to_string(), |r| r.summary.split.clone());
        Self {
            format_version: COMPARE_FORMAT.into(),
            experiment: experiment.display().to_string(),
            split,
            finished_runs: runs.len(),
            unfinished_runs: unfinished,
            definitions: known
                .into_iter()
                .filter(|(name, _)| used.contains(name.as_str()))
                .collect(),
            groups,
        }
    }
}

/// `rxalign status --json`: every experiment of a runs folder with each of
/// its runs' state and progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// The version of this format, `MAJOR.MINOR`.
    pub format_version: String,
    pub experiments: Vec<ExperimentStatus>,
}

/// One experiment's folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentStatus {
    /// The experiment's name (its folder's name).
    pub name: String,
    /// Its folder.
    pub folder: String,
    /// The experiment file it was planned from, where `experiment.json`
    /// says.
    pub file: Option<String>,
    /// Why `experiment.json` could not be read, if it could not.
    pub problem: Option<String>,
    /// How many runs are in each state.
    pub counts: BTreeMap<String, usize>,
    /// Planned runs in plan order, then runs on disk the plan lacks.
    pub runs: Vec<RunStatus>,
}

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStatus {
    /// The run's folder name.
    pub name: String,
    pub group: Option<String>,
    pub seed: Option<u64>,
    /// `planned`, `running`, `interrupted` (its process is gone),
    /// `finished`, `failed`, or `unreadable` (see `note`).
    pub state: String,
    /// The running (or last) stage, where the run has begun one.
    pub stage: Option<StageStatus>,
    /// Seconds from its start to its end or last update.
    pub elapsed_seconds: Option<f64>,
    /// The last method a finished run recorded (its last stage's).
    pub last_method: Option<String>,
    /// That method's test metrics (per-visit means unless named pooled);
    /// undefined ones are left out.
    pub test_metrics: BTreeMap<String, f64>,
    /// Why it failed, why it could not be read, or how to resume it.
    pub note: Option<String>,
}

/// A run's stage and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageStatus {
    /// Its position, from 1.
    pub number: usize,
    /// Stages of the run.
    pub of: usize,
    pub kind: String,
    pub method: String,
    /// Steps (epochs, iterations) done of `total`; 0 of 0 for a stage that
    /// reports none.
    pub step: u64,
    pub total: u64,
}

impl StatusReport {
    /// The status of the experiments read from a runs folder.
    pub fn of(experiments: &[ExperimentView]) -> Self {
        Self {
            format_version: STATUS_FORMAT.into(),
            experiments: experiments.iter().map(experiment_status).collect(),
        }
    }
}

fn state_name(entry: &RunEntry) -> String {
    entry
        .state()
        .map_or_else(|| "unreadable".to_string(), |s| s.to_string())
}

fn experiment_status(exp: &ExperimentView) -> ExperimentStatus {
    let mut counts = BTreeMap::new();
    for r in &exp.runs {
        *counts.entry(state_name(r)).or_insert(0) += 1;
    }
    ExperimentStatus {
        name: exp.folder.name(),
        folder: exp.folder.root().display().to_string(),
        file: exp.record.as_ref().map(|r| r.file.clone()),
        problem: exp.problem.clone(),
        counts,
        runs: exp.runs.iter().map(run_status).collect(),
    }
}

fn run_status(entry: &RunEntry) -> RunStatus {
    let record = entry.record.as_ref();
    let (group, seed) = match (record, &entry.planned) {
        (Some(r), _) => (Some(r.group.clone()), Some(r.seed)),
        (None, Some(p)) => (Some(p.group.clone()), Some(p.seed)),
        (None, None) => (None, None),
    };
    let stage = record.and_then(|r| {
        r.current.as_ref().map(|c| StageStatus {
            number: c.index + 1,
            of: r.stages.len(),
            kind: c.kind.clone(),
            method: c.method.clone(),
            step: c.step,
            total: c.total,
        })
    });
    let (mut last_method, mut test_metrics) = (None, BTreeMap::new());
    if let Some(summary) = entry.summary()
        && let Some(m) = summary.ordered().last()
    {
        last_method = Some(m.to_string());
        if let Some(s) = summary.methods.get(*m) {
            test_metrics = s
                .metrics
                .iter()
                .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (k.clone(), v)))
                .collect();
        }
    }
    let note = match (&entry.problem, record) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(r)) => r.error.clone(),
        _ => None,
    };
    RunStatus {
        name: entry.name.clone(),
        group,
        seed,
        state: state_name(entry),
        stage,
        elapsed_seconds: record.and_then(rxalign_core::run::RunRecord::elapsed_seconds),
        last_method,
        test_metrics,
        note,
    }
}

/// The JSON Schema of [`CompareReport`], as `docs/compare.schema.json` has it.
pub fn compare_schema() -> String {
    schema_text(schemars::schema_for!(CompareReport))
}

/// The JSON Schema of [`StatusReport`], as `docs/status.schema.json` has it.
pub fn status_schema() -> String {
    schema_text(schemars::schema_for!(StatusReport))
}

fn schema_text(schema: schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The documented schemas are those of the types (regenerate with
    /// `RXALIGN_WRITE_SCHEMAS=1 cargo test -p rxalign-cli --lib report`).
    #[test]
    fn the_schema_files_are_the_types_schemas() {
        for (file, schema) in [
            ("docs/compare.schema.json", compare_schema()),
            ("docs/status.schema.json", status_schema()),
        ] {
            let path = root().join(file);
            if std::env::var_os("RXALIGN_WRITE_SCHEMAS").is_some() {
                std::fs::write(&path, &schema).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == schema,
                "{file} differs from the type's schema; regenerate it with RXALIGN_WRITE_SCHEMAS=1 cargo test -p rxalign-cli --lib report"
            );
        }
    }
}
