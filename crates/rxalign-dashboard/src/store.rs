//! The store: every experiment and run under a runs folder, read through
//! `rxalign_core::run`, and reloaded file by file when a file changes
//! (cheap polling of modification times and sizes, once a second).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rxalign_core::run::{
    self, DrugsRecord, ExperimentRecord, FinishedRun, MetricsRecord, RunEntry, RunRecord, RunState,
    SummaryRecord,
};
use rxalign_core::{PredictionRecord, Trajectory};

/// How often the store looks for changed files.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// A run by experiment and run name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    pub experiment: String,
    pub run: String,
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.experiment, self.run)
    }
}

/// A file's modification time and size: when either changes, it is read again.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// One file of a run, read when it changes; `problem` says why the last
/// read failed (the previous value is kept, so a half-written file never
/// blanks a panel).
#[derive(Debug)]
pub struct Loaded<T> {
    stamp: Stamp,
    pub value: Option<T>,
    pub problem: Option<String>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Self {
            stamp: None,
            value: None,
            problem: None,
        }
    }
}

impl<T> Loaded<T> {
    /// Reads `path` again with `read` when its stamp changed; a missing
    /// file is no value and no problem. Returns whether anything changed.
    fn refresh(&mut self, path: &Path, read: impl FnOnce() -> Result<T, rxalign_core::CoreError>) -> bool {
        let now = stamp(path);
        if now == self.stamp {
            return false;
        }
        self.stamp = now;
        if now.is_none() {
            self.value = None;
            self.problem = None;
            return true;
        }
        match read() {
            Ok(v) => {
                self.value = Some(v);
                self.problem = None;
            }
            Err(e) => self.problem = Some(e.to_string()),
        }
        true
    }
}

/// Everything the dashboard shows of one run.
#[derive(Debug)]
pub struct RunData {
    pub id: RunId,
    /// Its plan entry, record and any problem reading `run.json`.
    pub entry: RunEntry,
    pub metrics: Loaded<Vec<MetricsRecord>>,
    pub trajectories: Loaded<Vec<Trajectory>>,
    pub drugs: Loaded<DrugsRecord>,
    pub summary: Loaded<SummaryRecord>,
}

impl RunData {
    fn new(id: RunId, entry: RunEntry) -> Self {
        Self {
            id,
            entry,
            metrics: Loaded::default(),
            trajectories: Loaded::default(),
            drugs: Loaded::default(),
            summary: Loaded::default(),
        }
    }

    /// Reads what changed in the run's folder; whether anything did.
    fn refresh(&mut self) -> bool {
        let f = self.entry.folder.clone();
        let mut changed = false;
        changed |= self.metrics.refresh(&f.path(run::METRICS), || f.read_metrics());
        changed |= self
            .trajectories
            .refresh(&f.path(run::TRAJECTORIES), || f.read_trajectories());
        changed |= self.drugs.refresh(&f.path(run::DRUGS), || f.read_drugs());
        changed |= self.summary.refresh(&f.path(run::SUMMARY), || f.read_summary());
        changed
    }

    pub fn record(&self) -> Option<&RunRecord> {
        self.entry.record.as_ref()
    }

    /// The group: configuration without the seed (from `run.json`, else the plan).
    pub fn group(&self) -> &str {
        self.record()
            .map(|r| r.group.as_str())
            .or(self.entry.planned.as_ref().map(|p| p.group.as_str()))
            .unwrap_or("")
    }

    pub fn seed(&self) -> Option<u64> {
        self.record()
            .map(|r| r.seed)
            .or(self.entry.planned.as_ref().map(|p| p.seed))
    }

    /// Ablation path -> value.
    pub fn overrides(&self) -> Option<&BTreeMap<String, String>> {
        self.record()
            .map(|r| &r.overrides)
            .or(self.entry.planned.as_ref().map(|p| &p.overrides))
    }

    /// `None` when `run.json` is unreadable (see `entry.problem`).
    pub fn state(&self) -> Option<RunState> {
        self.entry.state()
    }

    /// The run as `compare` reads it, when it finished and its summary is read.
    pub fn finished(&self) -> Option<FinishedRun> {
        let record = self.record()?.clone();
        if record.status != run::RunStatus::Finished {
            return None;
        }
        let summary = self.summary.value.clone()?;
        let methods = summary.ordered().into_iter().map(str::to_string).collect();
        Some(FinishedRun {
            record,
            folder: self.entry.folder.clone(),
            summary,
            methods,
        })
    }

    /// The predictions of a method (`ground_truth` too) on the summary's
    /// split, read through the core's JSON-lines reader.
    pub fn read_predictions(&self, method: &str) -> Result<Vec<PredictionRecord>, String> {
        run::read_jsonl_live(&self.entry.folder.predictions_of(method)).map_err(|e| e.to_string())
    }

    /// The methods with a predictions file, in the summary's order.
    pub fn prediction_methods(&self) -> Vec<String> {
        let ordered: Vec<String> = self
            .summary
            .value
            .as_ref()
            .map(|s| s.ordered().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        ordered
            .into_iter()
            .filter(|m| m != run::GROUND_TRUTH && self.entry.folder.predictions_of(m).is_file())
            .collect()
    }
}

/// One experiment: its plan and its runs in plan order.
#[derive(Debug)]
pub struct ExperimentData {
    pub name: String,
    pub dir: PathBuf,
    pub record: Option<ExperimentRecord>,
    /// Why `experiment.json` could not be read.
    pub problem: Option<String>,
    pub runs: Vec<RunId>,
}

/// Every experiment and run under a runs folder.
#[derive(Debug)]
pub struct RunStore {
    root: PathBuf,
    pub experiments: Vec<ExperimentData>,
    runs: HashMap<RunId, RunData>,
    /// Why the runs folder could not be read, or that it is empty.
    pub notice: Option<String>,
    last_poll: Option<Instant>,
    generation: u64,
}

impl RunStore {
    /// Opens a runs folder (or one experiment's folder) and reads it.
    pub fn open(root: impl Into<PathBuf>) -> Self {
        let mut store = Self {
            root: root.into(),
            experiments: Vec::new(),
            runs: HashMap::new(),
            notice: None,
            last_poll: None,
            generation: 0,
        };
        store.reload();
        store
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Grows by one whenever anything the store holds changed: panels
    /// cache what they derive by it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reloads when [`POLL_EVERY`] has passed since the last look.
    pub fn poll(&mut self) -> bool {
        if self.last_poll.is_some_and(|t| t.elapsed() < POLL_EVERY) {
            return false;
        }
        self.reload()
    }

    /// Looks at every experiment and run now: plans and `run.json` files
    /// again, the other files where their stamp changed. Whether anything
    /// changed.
    pub fn reload(&mut self) -> bool {
        self.last_poll = Some(Instant::now());
        let mut changed = false;
        let views = match run::experiments(&self.root) {
            Ok(v) => v,
            Err(e) => {
                let notice = Some(format!("cannot read the runs folder: {e}"));
                changed = notice != self.notice || !self.experiments.is_empty();
                self.notice = notice;
                self.experiments.clear();
                self.runs.clear();
                if changed {
                    self.generation += 1;
                }
                return changed;
            }
        };
        let notice = views.is_empty().then(|| {
            format!(
                "no experiments under {} yet: start one with `rxalign run`",
                self.root.display()
            )
        });
        changed |= notice != self.notice;
        self.notice = notice;
        let mut experiments = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for view in views {
            let name = view.folder.name();
            let mut ids = Vec::new();
            for entry in view.runs {
                let id = RunId {
                    experiment: name.clone(),
                    run: entry.name.clone(),
                };
                let data = self
                    .runs
                    .entry(id.clone())
                    .or_insert_with(|| RunData::new(id.clone(), entry.clone()));
                if data.entry.record != entry.record
                    || data.entry.problem != entry.problem
                    || data.entry.planned != entry.planned
                {
                    changed = true;
                }
                data.entry = entry;
                changed |= data.refresh();
                seen.insert(id.clone());
                ids.push(id);
            }
            experiments.push(ExperimentData {
                name,
                dir: view.folder.root().to_path_buf(),
                record: view.record,
                problem: view.problem,
                runs: ids,
            });
        }
        let before = self.runs.len();
        self.runs.retain(|id, _| seen.contains(id));
        changed |= before != self.runs.len();
        changed |= experiments.len() != self.experiments.len()
            || experiments
                .iter()
                .zip(&self.experiments)
                .any(|(a, b)| a.name != b.name || a.runs != b.runs || a.problem != b.problem);
        self.experiments = experiments;
        if changed {
            self.generation += 1;
        }
        changed
    }

    pub fn run(&self, id: &RunId) -> Option<&RunData> {
        self.runs.get(id)
    }

    pub fn experiment(&self, name: &str) -> Option<&ExperimentData> {
        self.experiments.iter().find(|e| e.name == name)
    }

    /// Every run in experiment and plan order.
    pub fn all_runs(&self) -> impl Iterator<Item = &RunData> {
        self.experiments
            .iter()
            .flat_map(|e| e.runs.iter())
            .filter_map(|id| self.runs.get(id))
    }

    /// The runs of an experiment, in plan order.
    pub fn runs_of<'a>(&'a self, experiment: &'a ExperimentData) -> impl Iterator<Item = &'a RunData> + 'a {
        experiment.runs.iter().filter_map(|id| self.runs.get(id))
    }
}
