//! The store: every experiment and run under a runs folder, read through
//! `rxalign_core::run`, and reloaded file by file when a file changes.
//!
//! What changed is found by the modification times and sizes of the files.
//! A store opened with [`RunStore::open_watched`] looks when the operating
//! system reports a change under the folder (through `notify`: inotify on
//! Linux), and otherwise every [`BACKSTOP_EVERY`]; where watching cannot
//! start (a missing folder, no inotify instances left, a file system that
//! reports nothing), it falls back to polling every [`POLL_EVERY`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rxalign_core::run::{
    self, DrugsRecord, ExperimentRecord, FinishedRun, MetricsRecord, RunEntry, RunRecord, RunState,
    SummaryRecord, VisitDetails,
};
use rxalign_core::{PredictionRecord, Trajectory};

/// How often a store that does not watch (or cannot) looks for changed files.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How often a watching store looks anyway, in case an event was lost (a
/// full inotify queue, a file system that reports changes late).
pub const BACKSTOP_EVERY: Duration = Duration::from_secs(10);

/// Called from the watcher's thread when something changed (the window
/// asks for a repaint).
pub type Wake = Box<dyn Fn() + Send + Sync>;

/// Where the wake callback lives, shared with the watcher's thread.
#[derive(Clone, Default)]
struct WakeSlot(Arc<Mutex<Option<Wake>>>);

impl std::fmt::Debug for WakeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.lock().map(|w| w.is_some()).unwrap_or(false);
        f.debug_tuple("WakeSlot").field(&set).finish()
    }
}

/// A live `notify` watcher over the runs folder, and the flag its events set.
struct Watch {
    _watcher: notify::RecommendedWatcher,
    dirty: Arc<AtomicBool>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("dirty", &self.dirty.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Watches `root` and everything under it; an error where the system
    /// refuses.
    fn start(root: &Path, wake: WakeSlot) -> Result<Self, String> {
        use notify::Watcher as _;
        let dirty = Arc::new(AtomicBool::new(false));
        let flag = dirty.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Reads (ours included) change nothing.
            let relevant = match &res {
                Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
                Err(_) => true,
            };
            if relevant {
                flag.store(true, Ordering::Release);
                if let Ok(w) = wake.0.lock()
                    && let Some(w) = w.as_ref()
                {
                    w();
                }
            }
        })
        .map_err(|e| e.to_string())?;
        watcher
            .watch(root, notify::RecursiveMode::Recursive)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            _watcher: watcher,
            dirty,
        })
    }
}

/// How the store learns of changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Polling every [`POLL_EVERY`] (the store was not asked to watch).
    Polling,
    /// Watching the folder, with a look every [`BACKSTOP_EVERY`].
    Watching,
    /// Asked to watch, but the system refused: polling every
    /// [`POLL_EVERY`], and trying to watch again then.
    Fallback(String),
}

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
    /// `visits.jsonl` (none in runs of format 1.0).
    pub visits: Loaded<Vec<VisitDetails>>,
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
            visits: Loaded::default(),
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
        changed |= self.visits.refresh(&f.path(run::VISITS), || f.read_visits());
        changed |= self.drugs.refresh(&f.path(run::DRUGS), || f.read_drugs());
        changed |= self.summary.refresh(&f.path(run::SUMMARY), || f.read_summary());
        changed
    }

    pub fn record(&self) -> Option<&RunRecord> {
        self.entry.record.as_ref()
    }

    /// The details of a visit from `visits.jsonl`, where the run has them.
    pub fn visit(&self, visit_id: &str) -> Option<&VisitDetails> {
        self.visits
            .value
            .as_ref()?
            .iter()
            .find(|v| v.visit_id == visit_id)
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
        let mut summary = self.summary.value.clone()?;
        // Each method's reward terms on its final lists (`reward/<term>`, a
        // researcher's own terms included) are kept in `metrics.jsonl`, not
        // in the summary: the method's last record of the summary's split
        // adds them, so the tables show every term without knowing its name.
        if let Some(records) = &self.metrics.value {
            for (method, s) in summary.methods.iter_mut() {
                let last = records
                    .iter()
                    .rev()
                    .find(|r| &r.method == method && r.split == summary.split);
                for (name, value) in last.into_iter().flat_map(|r| &r.metrics) {
                    if name.starts_with("reward/") {
                        s.metrics.entry(name.clone()).or_insert(*value);
                    }
                }
            }
        }
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
    watch: Option<Watch>,
    refresh: Refresh,
    /// Try to watch again (the folder did not exist at the last try).
    retry_watch: bool,
    wake: WakeSlot,
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
            watch: None,
            refresh: Refresh::Polling,
            retry_watch: false,
            wake: WakeSlot::default(),
        };
        store.reload();
        store
    }

    /// Opens a runs folder and watches it for changes (see the module's
    /// documentation); `wake` is called from the watcher's thread on each
    /// change.
    pub fn open_watched(root: impl Into<PathBuf>, wake: Option<Wake>) -> Self {
        let mut store = Self::open(root);
        if let Ok(mut w) = store.wake.0.lock() {
            *w = wake;
        }
        store.start_watching();
        store
    }

    fn start_watching(&mut self) {
        match Watch::start(&self.root, self.wake.clone()) {
            Ok(w) => {
                self.watch = Some(w);
                self.retry_watch = false;
                self.refresh = Refresh::Watching;
                // What changed between the first read and the watch.
                self.reload();
            }
            Err(e) => {
                self.watch = None;
                self.retry_watch = !self.root.is_dir();
                self.refresh = Refresh::Fallback(e);
            }
        }
    }

    /// How the store learns of changes now.
    pub fn refresh_mode(&self) -> &Refresh {
        &self.refresh
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Grows by one whenever anything the store holds changed: panels
    /// cache what they derive by it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reloads when the watcher reported a change, or when [`POLL_EVERY`]
    /// (watching: [`BACKSTOP_EVERY`]) has passed since the last look; a
    /// store whose watch failed tries to watch again then. Whether
    /// anything changed.
    pub fn poll(&mut self) -> bool {
        let dirty = self
            .watch
            .as_ref()
            .is_some_and(|w| w.dirty.swap(false, Ordering::AcqRel));
        let every = if self.watch.is_some() {
            BACKSTOP_EVERY
        } else {
            POLL_EVERY
        };
        if !dirty && self.last_poll.is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        if self.retry_watch && self.root.is_dir() {
            self.start_watching();
        }
        self.reload()
    }

    /// How long until the store looks again by itself (the window repaints
    /// then).
    pub fn next_look(&self) -> Duration {
        if self.watch.is_some() {
            BACKSTOP_EVERY
        } else {
            POLL_EVERY
        }
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
