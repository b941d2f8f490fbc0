//! The records of run and experiment folders, each a plain serde struct.
//!
//! Readers skip fields they do not know (a newer minor version adds some);
//! the `format` field of `run.json`, `experiment.json`, `summary.json` and
//! `drugs.json` is checked before anything else is read (see
//! [`super::version`]). The lines of `metrics.jsonl` and
//! `trajectories.jsonl` follow the version of their folder's `run.json`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::version::FormatVersion;

/// The version of a run folder's files that this build writes and reads:
/// `run.json`, `metrics.jsonl`, `trajectories.jsonl`, `visits.jsonl`,
/// `summary.json`, `drugs.json`.
///
/// 1.1 added `visits.jsonl` and each method's `edits` in `summary.json`;
/// readers of 1.0 skip both. 1.2 added each method's list-level edit
/// counts (`edits.lists`, and the `edit/...` metrics), and the record of
/// which trajectories a method kept (`trajectories`); readers of 1.1 skip
/// them. 1.3 added `run.json`'s `split` (the split's patient-list
/// fingerprint and its diagnostics) and each method's `per_patient` means
/// in `summary.json`; readers of 1.2 skip both.
pub const RUN_FORMAT: FormatVersion = FormatVersion::new(1, 3);

/// The version of `experiment.json` that this build writes and reads.
pub const EXPERIMENT_FORMAT: FormatVersion = FormatVersion::new(1, 0);

/// This build's version, recorded in every run.
pub const RXALIGN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which stage of a run produced a record: its index in the file's
/// `stages` and the method name its rows carry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageRef {
    pub index: usize,
    pub method: String,
}

/// A stage as `run.json` lists it before it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub index: usize,
    /// The plugin kind (`classifier`, `sft`, `step_grpo`, ...).
    pub kind: String,
    /// The method name of its rows (its kind, unless it says otherwise).
    pub method: String,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Its folder exists, nothing has started.
    Planned,
    /// A process is running it (or was, until it died: see
    /// [`RunRecord::writer`]).
    Running,
    /// Its summary is written.
    Finished,
    /// A stage returned an error, or panicked: see [`RunRecord::error`].
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Planned => "planned",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        })
    }
}

/// The stage running now, and how far it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageProgress {
    pub index: usize,
    pub kind: String,
    pub method: String,
    /// Steps done (epochs, iterations) of `total`; 0 of 0 for stages that
    /// do not report steps.
    pub step: u64,
    pub total: u64,
}

/// The process that writes a run folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub host: String,
    pub pid: u32,
    /// When the process started (the boot's id and the start time in clock
    /// ticks, from `/proc`), so that a later process given the same pid is
    /// not taken for the writer; absent where the system does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
}

/// The start of process `pid` on this machine: the boot's id and the start
/// time in clock ticks since boot (`/proc/PID/stat`, field 22), with the
/// process state; `None` where `/proc` does not say.
fn process_start(pid: &str) -> Option<(String, char)> {
    let proc = std::path::Path::new("/proc");
    let stat = std::fs::read_to_string(proc.join(pid).join("stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 3.. of the line; the start time is field 22.
    let ticks = fields.nth(18)?;
    let boot = std::fs::read_to_string(proc.join("sys/kernel/random/boot_id")).unwrap_or_default();
    Some((format!("{}:{ticks}", boot.trim()), state))
}

impl Writer {
    /// This process.
    pub fn this_process() -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            started: process_start("self").map(|(s, _)| s),
        }
    }

    /// Whether the writer still runs: `None` where this machine cannot tell
    /// (another host, or no `/proc`). A process of the same pid that
    /// started at another time (the pid was reused) is not the writer.
    pub fn is_alive(&self) -> Option<bool> {
        let proc = std::path::Path::new("/proc");
        if self.host != host_name() || !proc.join("self").exists() {
            return None;
        }
        Some(
            process_start(&self.pid.to_string()).is_some_and(|(started, state)| {
                // A killed process not yet reaped by its parent is a zombie (`Z`).
                !matches!(state, 'Z' | 'X' | 'x') && self.started.as_ref().is_none_or(|s| *s == started)
            }),
        )
    }
}

/// The name of this machine (`/proc/sys/kernel/hostname`, `HOSTNAME`,
/// `COMPUTERNAME`), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// What a run's data was, so that results on different cohorts or DDI
/// graphs are never mixed silently: counts, and SHA-256 digests of the
/// visits (every field, codes by name) and of the DDI pairs (by code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// The cohort's name.
    pub source: String,
    pub visits: usize,
    pub patients: usize,
    pub drugs: usize,
    pub ddi_pairs: usize,
    pub visits_sha256: String,
    pub ddi_sha256: String,
}

impl DataFingerprint {
    /// What differs from `other`, one phrase per field (`visits 1500 ->
    /// 1400`); empty when they are the same data.
    pub fn differences(&self, other: &DataFingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name} {a} -> {b}"));
            }
        };
        field("source", self.source.clone(), other.source.clone());
        field("visits", self.visits.to_string(), other.visits.to_string());
        field("patients", self.patients.to_string(), other.patients.to_string());
        field("drugs", self.drugs.to_string(), other.drugs.to_string());
        field(
            "DDI pairs",
            self.ddi_pairs.to_string(),
            other.ddi_pairs.to_string(),
        );
        field(
            "visits SHA-256",
            short(&self.visits_sha256),
            short(&other.visits_sha256),
        );
        field("DDI SHA-256", short(&self.ddi_sha256), short(&other.ddi_sha256));
        out
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// `run.json`: what a run is, where it is and what it ran on. Written
/// atomically at every stage boundary and at a bounded rate within stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: FormatVersion,
    pub experiment: String,
    pub run: String,
    /// The variant and grid values without the seed: what `compare`
    /// averages over seeds.
    pub group: String,
    pub seed: u64,
    /// Ablation path -> value (RON).
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// SHA-256 of `resolved.ron`: a finished run is kept only while this and
    /// the data fingerprint are unchanged.
    pub settings_sha256: String,
    pub stages: Vec<StageInfo>,
    pub status: RunStatus,
    #[serde(default)]
    pub current: Option<StageProgress>,
    pub created: Timestamp,
    #[serde(default)]
    pub started: Option<Timestamp>,
    pub updated: Timestamp,
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// Why a failed run failed.
    #[serde(default)]
    pub error: Option<String>,
    pub rxalign_version: String,
    /// `cpu`, or `cuda:N`.
    pub device: String,
    /// Set once the data is loaded.
    #[serde(default)]
    pub data: Option<DataFingerprint>,
    /// The process that writes (or wrote) the run.
    #[serde(default)]
    pub writer: Option<Writer>,
    /// SHA-256 of the run's settings with its seed left out: the same for
    /// every seed of a group, so that runs of one group made with other
    /// settings are never averaged as seeds of one another (absent in runs
    /// of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_settings_sha256: Option<String>,
    /// Every file or folder the settings name, apart from the dataset (its
    /// fingerprint is [`Self::data`]): a tokenizer, a start-list
    /// predictions file, a model folder, a file a plugin names; by setting
    /// path. A run resumes only while these are unchanged (absent in runs
    /// of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<BTreeMap<String, InputFile>>,
    /// The split: how it was drawn, its patient lists' fingerprint and
    /// each part's diagnostics; set once the data is loaded (since format
    /// 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<super::split::SplitRecord>,
}

/// A file or folder a run's settings name, as it was when the run read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// As the setting names it (relative to the directory rxalign ran in).
    pub path: String,
    /// SHA-256 of the file's bytes; of a folder, of each file's relative
    /// path and bytes, in name order.
    pub sha256: String,
}

impl InputFile {
    /// The fingerprint of the file or folder at `path`.
    pub fn of(path: &std::path::Path) -> Result<Self, crate::CoreError> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        fn feed(hasher: &mut Sha256, path: &std::path::Path, name: &str) -> Result<(), crate::CoreError> {
            let io = |e| crate::CoreError::io(path, e);
            if path.is_dir() {
                let mut entries: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(path)
                    .map_err(io)?
                    .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
                    .collect::<Result<_, _>>()
                    .map_err(io)?;
                entries.sort();
                for (child, child_path) in entries {
                    feed(hasher, &child_path, &format!("{name}/{child}"))?;
                }
            } else {
                hasher.update((name.len() as u64).to_le_bytes());
                hasher.update(name.as_bytes());
                let mut file = std::fs::File::open(path).map_err(io)?;
                let mut buffer = vec![0u8; 1 << 16];
                loop {
                    let n = file.read(&mut buffer).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                }
                // The end of a file's bytes.
                hasher.update([0xff]);
            }
            Ok(())
        }
        let mut hasher = Sha256::new();
        feed(&mut hasher, path, "")?;
        Ok(Self {
            path: path.display().to_string(),
            sha256: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

/// What differs between the inputs a run read before and now, one phrase
/// per setting (`notes.tokenizer: tok.json SHA-256 1a2b3c4d5e6f ->
/// 0f9e8d7c6b5a`); empty when they are the same.
pub fn input_differences(
    old: &BTreeMap<String, InputFile>,
    new: &BTreeMap<String, InputFile>,
) -> Vec<String> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) if a.path == b.path => Some(format!(
                "{k}: {} SHA-256 {} -> {}",
                a.path,
                short(&a.sha256),
                short(&b.sha256)
            )),
            (Some(a), Some(b)) => Some(format!("{k}: {} -> {}", a.path, b.path)),
            (Some(a), None) => Some(format!("{k}: {} no longer read", a.path)),
            (None, Some(b)) => Some(format!("{k}: {} read now", b.path)),
            (None, None) => None,
        })
        .collect()
}

/// How a reader should present a run: its status, with a running run whose
/// writer has died shown as interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// In the plan, no folder yet (or a folder that says `planned`).
    Planned,
    Running,
    /// `running`, but its process is gone (killed, or the machine stopped).
    Interrupted,
    Finished,
    Failed,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Planned => "planned",
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::Finished => "finished",
            Self::Failed => "failed",
        })
    }
}

impl RunRecord {
    /// The state a reader shows.
    pub fn state(&self) -> RunState {
        match self.status {
            RunStatus::Planned => RunState::Planned,
            RunStatus::Finished => RunState::Finished,
            RunStatus::Failed => RunState::Failed,
            RunStatus::Running => match self.writer.as_ref().and_then(Writer::is_alive) {
                Some(false) => RunState::Interrupted,
                _ => RunState::Running,
            },
        }
    }

    /// Seconds since `run.json` was last written.
    pub fn seconds_since_update(&self) -> f64 {
        Timestamp::now().duration_since(self.updated).as_secs_f64()
    }

    /// Seconds from start to end (or to the last update).
    pub fn elapsed_seconds(&self) -> Option<f64> {
        let start = self.started?;
        let end = self.ended.unwrap_or(self.updated);
        Some(end.duration_since(start).as_secs_f64())
    }
}

/// One planned run of an experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub name: String,
    pub group: String,
    pub seed: u64,
    /// Ablation path -> value (RON).
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// [`RunRecord::group_settings_sha256`] of the run as planned: one
    /// experiment folder holds one settings per group (absent in plans of
    /// older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_settings_sha256: Option<String>,
}

/// One ablation axis: a path and its values (RON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub path: String,
    pub values: Vec<String>,
}

/// `experiment.json`: the plan of an experiment, written by `rxalign run`
/// before any run starts, so that readers show runs that have not started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRecord {
    pub format: FormatVersion,
    pub name: String,
    /// The experiment file as it was named on the command line.
    pub file: String,
    pub file_sha256: String,
    /// The grid's axes.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// The named variants, in file order.
    #[serde(default)]
    pub variants: Vec<String>,
    pub runs: Vec<PlannedRun>,
    pub rxalign_version: String,
}

/// One drug of the run's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrugEntry {
    pub index: usize,
    pub code: String,
    pub name: String,
}

/// One interacting pair, by code (`a < b` by index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdiPair {
    pub a: String,
    pub b: String,
    /// Where the source grades interactions (none of the shipped sources
    /// does yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// `drugs.json`: the run's drug vocabulary and DDI graph, so that a reader
/// names every drug and marks every interaction without the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrugsRecord {
    pub format: FormatVersion,
    /// The cohort's name.
    pub source: String,
    pub drugs: Vec<DrugEntry>,
    /// Where the DDI graph came from (file or description).
    pub ddi_origin: String,
    #[serde(default)]
    pub ddi_sha256: Option<String>,
    pub ddi: Vec<DdiPair>,
}

impl DrugsRecord {
    /// `code (name)`, or the code alone when the vocabulary has no name
    /// for it (or does not know it).
    pub fn label(&self, code: &str) -> String {
        match self.drugs.iter().find(|d| d.code == code) {
            Some(d) if !d.name.is_empty() && d.name != d.code => format!("{} ({})", d.code, d.name),
            _ => code.to_string(),
        }
    }
}

/// One evaluation or training statistic: when (`step` of `stage`, and the
/// wall-clock `time`), on which split, of which method, and every metric by
/// name (null where undefined).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// The stage's own step (epoch, iteration; 0 for one-off evaluations).
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<StageRef>,
    pub split: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    pub metrics: BTreeMap<String, Option<f64>>,
}

impl MetricsRecord {
    /// A record without stage and time; [`the run context`] stamps them.
    ///
    /// [`the run context`]: https://docs.rs/rxalign-experiment
    pub fn new(
        step: u64,
        split: impl Into<String>,
        method: impl Into<String>,
        metrics: BTreeMap<String, Option<f64>>,
    ) -> Self {
        Self {
            step,
            stage: None,
            split: split.into(),
            method: method.into(),
            time: None,
            metrics,
        }
    }
}

/// The final test metrics of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// The order in which the run recorded its methods (0 first).
    pub order: usize,
    /// The stage that recorded it (none for the ground truth).
    #[serde(default)]
    pub stage: Option<StageRef>,
    /// Test visits scored.
    pub visits: usize,
    /// Every metric by name (null where undefined); definitions in
    /// `rxalign eval --help` and the README.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// Per drug, the net edits from each visit's start list to the final
    /// list, judged against the ground truth (since format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits: Option<EditCounts>,
    /// Which of its test visits' trajectories the method kept, for a
    /// method that starts from a list (since format 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories: Option<KeptTrajectories>,
    /// The per-patient means of the same metrics: each metric computed
    /// over each patient's test visits, then averaged over patients, so
    /// that a patient with many visits weighs as much as one with few
    /// (`metrics` holds the per-visit means; since format 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_patient: Option<BTreeMap<String, Option<f64>>>,
}

/// Which test visits a method's trajectories in `trajectories.jsonl` are
/// of: the first `first` of the test split, and the visits where it edited
/// (its final list differs from its start list), at most `edited_bound`
/// of them, in test order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptTrajectories {
    /// `eval.trajectories`: the first test visits kept, edited or not.
    pub first: usize,
    /// `eval.edited_trajectories`: the most visits kept for having been
    /// edited (besides those among the first).
    pub edited_bound: usize,
    /// Test visits where the method edited.
    pub edited: usize,
    /// Of those, the visits whose trajectory is kept (among the first, or
    /// within the bound).
    pub edited_kept: usize,
}

impl KeptTrajectories {
    /// One line for a reader: what was kept and what was left out.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "trajectories kept: the first {} test visits, and the visits where the method edited ({} of {}, at most {} besides the first)",
            self.first, self.edited_kept, self.edited, self.edited_bound
        );
        if self.edited_kept < self.edited {
            s.push_str(&format!(
                "; {} edited visits have no trajectory (raise eval.edited_trajectories to keep them)",
                self.edited - self.edited_kept
            ));
        }
        s
    }
}

/// One drug's net edits over visits: a drug in the final list and not in
/// the start list was added; one in the start list and not in the final
/// list was removed; each judged against the visit's ground truth.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrugEditCounts {
    /// Added and in the ground truth.
    pub added_right: usize,
    /// Added and not in the ground truth (overprescribed).
    pub added_wrong: usize,
    /// Removed and not in the ground truth.
    pub removed_right: usize,
    /// Removed while in the ground truth.
    pub removed_wrong: usize,
}

/// The net edits of a method per drug (by code), over `visits` visits of
/// `split`; drugs never edited are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EditCounts {
    pub split: String,
    /// Visits counted.
    pub visits: usize,
    /// Where the start lists come from (for example `the start lists the
    /// policy decoded from`), so a reader can say what was counted.
    pub starts: String,
    pub drugs: BTreeMap<String, DrugEditCounts>,
    /// The list-level counts behind the `edit/...` metrics, for a method
    /// that starts from a list (since format 1.2; see
    /// [`crate::metrics::edits`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<crate::metrics::ListEdits>,
}

impl EditCounts {
    pub fn new(split: impl Into<String>, starts: impl Into<String>) -> Self {
        Self {
            split: split.into(),
            starts: starts.into(),
            ..Self::default()
        }
    }

    /// The counts of a method that starts from a list: per drug and, per
    /// list, the counts of the `edit/...` metrics.
    pub fn of_editor(split: impl Into<String>, starts: impl Into<String>) -> Self {
        Self {
            lists: Some(crate::metrics::ListEdits::new()),
            ..Self::new(split, starts)
        }
    }

    /// Counts one visit's net edits from `start` to `end` against `truth`
    /// (and, for an editor's counts, the list with its outcome reward
    /// `Phi(end) - Phi(start)` where known).
    pub fn count(
        &mut self,
        start: &crate::DrugSet,
        end: &crate::DrugSet,
        truth: &crate::DrugSet,
        drugs: &crate::Vocab,
        outcome: Option<f64>,
    ) {
        self.visits += 1;
        if let Some(lists) = &mut self.lists {
            lists.count(start, end, truth, outcome);
        }
        for d in end.iter().filter(|&d| !start.contains(d)) {
            let c = self.drugs.entry(drugs.code(d).to_string()).or_default();
            if truth.contains(d) {
                c.added_right += 1;
            } else {
                c.added_wrong += 1;
            }
        }
        for d in start.iter().filter(|&d| !end.contains(d)) {
            let c = self.drugs.entry(drugs.code(d).to_string()).or_default();
            if truth.contains(d) {
                c.removed_wrong += 1;
            } else {
                c.removed_right += 1;
            }
        }
    }
}

/// `summary.json`: final metrics per method on the test split; written
/// last, when the run finishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRecord {
    pub format: FormatVersion,
    /// The split every number is on.
    pub split: String,
    pub methods: BTreeMap<String, MethodSummary>,
}

impl Default for SummaryRecord {
    fn default() -> Self {
        Self {
            format: RUN_FORMAT,
            split: "test".into(),
            methods: BTreeMap::new(),
        }
    }
}

impl SummaryRecord {
    /// Adds (or replaces) a method, after the ones already there.
    pub fn insert(
        &mut self,
        method: &str,
        stage: Option<StageRef>,
        visits: usize,
        metrics: BTreeMap<String, Option<f64>>,
    ) {
        let order = self.methods.get(method).map_or(self.methods.len(), |m| m.order);
        self.methods.insert(
            method.to_string(),
            MethodSummary {
                order,
                stage,
                visits,
                metrics,
                edits: None,
                trajectories: None,
                per_patient: None,
            },
        );
    }

    /// Sets the net edits of a method already inserted; false when there is
    /// no such method.
    pub fn set_edits(&mut self, method: &str, edits: EditCounts) -> bool {
        match self.methods.get_mut(method) {
            Some(m) => {
                m.edits = Some(edits);
                true
            }
            None => false,
        }
    }

    /// Sets the per-patient means of a method already inserted; false when
    /// there is no such method.
    pub fn set_per_patient(&mut self, method: &str, means: BTreeMap<String, Option<f64>>) -> bool {
        match self.methods.get_mut(method) {
            Some(m) => {
                m.per_patient = Some(means);
                true
            }
            None => false,
        }
    }

    /// A metric's per-patient mean of a method, where recorded and defined.
    pub fn per_patient_metric(&self, method: &str, metric: &str) -> Option<f64> {
        self.methods
            .get(method)?
            .per_patient
            .as_ref()?
            .get(metric)
            .copied()
            .flatten()
    }

    /// Method names in the order the run recorded them.
    pub fn ordered(&self) -> Vec<&str> {
        let mut m: Vec<(&String, &MethodSummary)> = self.methods.iter().collect();
        m.sort_by_key(|(_, s)| s.order);
        m.into_iter().map(|(k, _)| k.as_str()).collect()
    }

    /// A metric of a method, where defined.
    pub fn metric(&self, method: &str, metric: &str) -> Option<f64> {
        self.methods.get(method)?.metrics.get(metric).copied().flatten()
    }
}
