//! The run and experiment folders: the contract between the trainer,
//! TensorBoard, `compare`, `plot`, `status` and the dashboard. This module
//! names every file and defines every record; nothing here links burn.
//!
//! ```text
//! runs/<experiment>/
//!   experiment.json      the plan: file and hash, ablation axes, every planned run
//!   <run>/
//!     run.json           status, stages, current stage and step, times, error, version, device, data fingerprint,
//!                        the split's fingerprint and diagnostics
//!     run.lock           held by the one process writing the folder (its pid inside)
//!     resolved.ron       every setting of this run, ablation values and seed included
//!     drugs.json         the drug vocabulary with names, and the DDI pairs
//!     metrics.jsonl      appended live: step, stage, split, method, time, each metric
//!     trajectories.jsonl one line per inspected visit
//!     visits.jsonl       each inspected visit once: codes with names, note with mentions
//!     predictions/       one predictions file per method (`ground_truth.jsonl` too)
//!     tokenizer.json     the note tokenizer, where the run reads notes
//!     tensorboard/       event files, with the `tensorboard` logger
//!     checkpoints/       NN-<kind>.ckpt of training stages
//!     summary.json       final test metrics per method, written last
//! ```
//!
//! Records are written atomically (beside their final name, then renamed)
//! or appended line by line (`metrics.jsonl`); readers of a file that is
//! being appended skip a half-written last line. Each record carries a
//! format version ([`version`]).

pub mod aggregate;
pub mod discover;
mod fingerprint;
pub mod lock;
pub mod records;
pub mod split;
pub mod version;
pub mod visits;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use aggregate::{
    COLUMNS, Cell, Comparison, Format, Mean, compare, compare_with, histogram, pareto_front,
};
pub use discover::{ExperimentView, FinishedRun, RunEntry, experiments, finished_runs, runs_of};
pub use lock::{EXPERIMENT_LOCK, ExperimentLock, RunLock};
pub use records::{
    Axis, DataFingerprint, DdiPair, DrugEditCounts, DrugEntry, DrugsRecord, EXPERIMENT_FORMAT, EditCounts,
    ExperimentRecord, InputFile, KeptTrajectories, MethodSummary, MetricsRecord, PlannedRun, RUN_FORMAT,
    RXALIGN_VERSION, RunRecord, RunState, RunStatus, StageInfo, StageProgress, StageRef, SummaryRecord,
    Writer, input_differences,
};
pub use split::{DOMINANT_PATIENT_SHARE, SplitPart, SplitRecord};
pub use version::FormatVersion;
pub use visits::{Lexicon, Mention, MentionKind, NamedCode, VisitDetails};

use crate::{CoreError, Trajectory};

/// The plan of an experiment, in its folder.
pub const EXPERIMENT: &str = "experiment.json";
/// A run's identity and state.
pub const RUN: &str = "run.json";
/// The lock of the one writer of a run folder.
pub const LOCK: &str = "run.lock";
pub const RESOLVED: &str = "resolved.ron";
pub const DRUGS: &str = "drugs.json";
pub const METRICS: &str = "metrics.jsonl";
pub const TRAJECTORIES: &str = "trajectories.jsonl";
/// Each visit of `trajectories.jsonl` once, as a reader shows it (since
/// run format 1.1; see [`visits`]).
pub const VISITS: &str = "visits.jsonl";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINTS: &str = "checkpoints";
/// Each method's test predictions, `predictions/<method>.jsonl`.
pub const PREDICTIONS: &str = "predictions";
/// The note tokenizer of a run that reads notes.
pub const TOKENIZER: &str = "tokenizer.json";
/// The `tensorboard` logger's default folder.
pub const TENSORBOARD: &str = "tensorboard";
/// The method name of the prescriptions scored against themselves, and its
/// predictions file is `predictions/ground_truth.jsonl`.
pub const GROUND_TRUTH: &str = "ground_truth";

/// Checks an experiment or run name: it becomes a folder name, so it must
/// be non-empty and must not climb out of its parent or name a hidden or
/// nested folder.
pub fn validate_name(what: &str, name: &str) -> Result<(), CoreError> {
    let bad = |why: &str| Err(CoreError::Invalid(format!("{what} `{name}`: {why}")));
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.contains(['/', '\\']) {
        return bad("must not contain a path separator (`/` or `\\`)");
    }
    if name.contains("..") {
        return bad("must not contain `..`");
    }
    if name.starts_with('.') {
        return bad("must not start with `.`");
    }
    if name.chars().any(|c| c.is_control() || c == ':') {
        return bad("must not contain control characters or `:`");
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder
/// is written and synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| CoreError::file(path, "not a file path"))?
        .to_string_lossy();
    // Unique across threads, processes and hosts sharing the folder.
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}-{}",
        records::host_name(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CoreError::io(path, e)
    })
}

/// The parts of a temporary file's name as [`write_atomic`] makes it
/// (`.NAME.tmp-HOST-PID-N`): the final name, the host and the process id;
/// `None` for any other name.
pub fn parse_temporary(file_name: &str) -> Option<(&str, &str, u32)> {
    let (name, tail) = file_name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let mut parts = tail.rsplitn(3, '-');
    let (counter, pid, host) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || host.is_empty() || !digits(counter) || !digits(pid) {
        return None;
    }
    Some((name, host, pid.parse().ok()?))
}

/// Whether `file_name` is a temporary of [`write_atomic`] whose writer is
/// gone (killed between writing and renaming): on this machine, a process
/// that no longer runs; on another, any (the caller holds the folder's
/// [`RunLock`], so no other process writes there now). Only the folder's
/// one writer may remove such files.
pub fn is_stale_temporary(file_name: &str) -> bool {
    parse_temporary(file_name).is_some_and(|(_, host, pid)| writer_is_gone(host, pid))
}

/// Whether the process `pid` on `host` that wrote a temporary is gone (see
/// [`is_stale_temporary`]); this process never is.
pub fn writer_is_gone(host: &str, pid: u32) -> bool {
    if host != records::host_name() {
        return true;
    }
    let writer = Writer {
        host: host.to_string(),
        pid,
        started: None,
    };
    pid != std::process::id() && writer.is_alive() != Some(true)
}

/// Appends records to a JSON-lines file, one line each, in one write. A
/// half-written last line (left by a killed writer) is cut off first, so
/// the file stays a list of whole lines.
pub fn append_jsonl<T: serde::Serialize>(path: &Path, records: &[T]) -> Result<(), CoreError> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| CoreError::file(path, e.to_string()))?;
        text.push_str(&line);
        text.push('\n');
    }
    let io = |e| CoreError::io(path, e);
    let mut f = std::fs::File::options()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::Start(len - 1)).map_err(io)?;
        f.read_exact(&mut last).map_err(io)?;
        if last[0] != b'\n' {
            let mut all = Vec::new();
            f.seek(SeekFrom::Start(0)).map_err(io)?;
            f.read_to_end(&mut all).map_err(io)?;
            let keep = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            f.set_len(keep as u64).map_err(io)?;
        }
    }
    f.write_all(text.as_bytes()).map_err(io)?;
    f.flush().map_err(io)
}

/// Reads a JSON-lines file; a bad line is an error naming it.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| crate::jsonl::parse_line(path, i + 1, l))
        .collect()
}

/// Reads a JSON-lines file that may be being appended: the whole lines,
/// skipping a last line without its newline (half-written); a bad whole
/// line is an error naming it. A missing file reads as no lines.
pub fn read_jsonl_live<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, CoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        // A line cut inside a multi-byte character.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
            let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            String::from_utf8(bytes[..end].to_vec()).map_err(|_| CoreError::file(path, "not UTF-8 text"))?
        }
        Err(e) => return Err(CoreError::io(path, e)),
    };
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| crate::jsonl::parse_line(path, i + 1, l))
        .collect()
}

fn read_text(path: &Path) -> Result<String, CoreError> {
    std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))
}

fn pretty<T: serde::Serialize>(path: &Path, record: &T) -> Result<Vec<u8>, CoreError> {
    let mut text = serde_json::to_string_pretty(record).map_err(|e| CoreError::file(path, e.to_string()))?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunFolder {
    root: PathBuf,
}

impl RunFolder {
    /// A run folder at `root`, which may not exist yet.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the folder (and `checkpoints/`) if needed.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, CoreError> {
        let root = root.into();
        let ck = root.join(CHECKPOINTS);
        std::fs::create_dir_all(&ck).map_err(|e| CoreError::io(&ck, e))?;
        Ok(Self { root })
    }

    /// Opens a run folder: its `run.json` must exist and be of a format this
    /// build reads.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, CoreError> {
        let folder = Self::at(root);
        if !folder.path(RUN).is_file() {
            return Err(CoreError::file(
                &folder.root,
                format!("not a run folder: no {RUN}"),
            ));
        }
        folder.read_record()?;
        Ok(folder)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run's name: its folder's name.
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join(CHECKPOINTS)
    }

    pub fn predictions(&self) -> PathBuf {
        self.root.join(PREDICTIONS)
    }

    /// The predictions file of a method.
    pub fn predictions_of(&self, method: &str) -> PathBuf {
        self.predictions().join(format!("{method}.jsonl"))
    }

    /// Whether `run.json` exists (readable or not): the marker of a folder
    /// rxalign made.
    pub fn has_record(&self) -> bool {
        self.path(RUN).is_file()
    }

    pub fn read_record(&self) -> Result<RunRecord, CoreError> {
        let p = self.path(RUN);
        version::read_versioned(&p, &read_text(&p)?, RUN_FORMAT)
    }

    pub fn write_record(&self, record: &RunRecord) -> Result<(), CoreError> {
        let p = self.path(RUN);
        write_atomic(&p, &pretty(&p, record)?)
    }

    /// Whether the run finished: `run.json` says so and its summary exists.
    pub fn is_finished(&self) -> bool {
        self.path(SUMMARY).is_file() && self.read_record().is_ok_and(|r| r.status == RunStatus::Finished)
    }

    pub fn write_resolved(&self, ron_text: &str) -> Result<(), CoreError> {
        write_atomic(&self.path(RESOLVED), ron_text.as_bytes())
    }

    pub fn read_resolved(&self) -> Result<String, CoreError> {
        read_text(&self.path(RESOLVED))
    }

    /// Appends records to `metrics.jsonl`, one line each.
    pub fn append_metrics(&self, records: &[MetricsRecord]) -> Result<(), CoreError> {
        append_jsonl(&self.path(METRICS), records)
    }

    /// The records of `metrics.jsonl` (none when it does not exist yet),
    /// skipping a half-written last line.
    pub fn read_metrics(&self) -> Result<Vec<MetricsRecord>, CoreError> {
        read_jsonl_live(&self.path(METRICS))
    }

    pub fn write_trajectories(&self, trajectories: &[Trajectory]) -> Result<(), CoreError> {
        let p = self.path(TRAJECTORIES);
        let mut text = String::new();
        for t in trajectories {
            text.push_str(&serde_json::to_string(t).map_err(|e| CoreError::file(&p, e.to_string()))?);
            text.push('\n');
        }
        write_atomic(&p, text.as_bytes())
    }

    pub fn read_trajectories(&self) -> Result<Vec<Trajectory>, CoreError> {
        read_jsonl_live(&self.path(TRAJECTORIES))
    }

    /// Writes `visits.jsonl` atomically, one line per visit.
    pub fn write_visits(&self, visits: &[VisitDetails]) -> Result<(), CoreError> {
        let p = self.path(VISITS);
        let mut text = String::new();
        for v in visits {
            text.push_str(&serde_json::to_string(v).map_err(|e| CoreError::file(&p, e.to_string()))?);
            text.push('\n');
        }
        write_atomic(&p, text.as_bytes())
    }

    /// The lines of `visits.jsonl`; none when the file does not exist (a
    /// run of format 1.0, or one that has recorded no trajectory yet).
    pub fn read_visits(&self) -> Result<Vec<VisitDetails>, CoreError> {
        read_jsonl_live(&self.path(VISITS))
    }

    pub fn write_summary(&self, summary: &SummaryRecord) -> Result<(), CoreError> {
        let p = self.path(SUMMARY);
        write_atomic(&p, &pretty(&p, summary)?)
    }

    pub fn read_summary(&self) -> Result<SummaryRecord, CoreError> {
        let p = self.path(SUMMARY);
        version::read_versioned(&p, &read_text(&p)?, RUN_FORMAT)
    }

    pub fn write_drugs(&self, drugs: &DrugsRecord) -> Result<(), CoreError> {
        let p = self.path(DRUGS);
        write_atomic(&p, &pretty(&p, drugs)?)
    }

    pub fn read_drugs(&self) -> Result<DrugsRecord, CoreError> {
        let p = self.path(DRUGS);
        version::read_versioned(&p, &read_text(&p)?, RUN_FORMAT)
    }

    /// Removes the files a run wrote, for a run that runs again: every
    /// record of [this module](self) but `run.json` (rewritten as the run
    /// starts) and the lock, each method's predictions, TensorBoard's event
    /// files wherever a logger put them, leftover temporaries of killed
    /// writers and, unless `keep_checkpoints`, the checkpoints of the
    /// stages its record lists (`NN-kind.ckpt`, `NN-kind.best.ckpt`). Anything
    /// else (a file a user put there) is left alone and returned, so the
    /// caller can say so. Refuses a folder without a readable `run.json`
    /// (not ours, or of an unknown format).
    pub fn clear(&self, keep_checkpoints: bool) -> Result<Vec<PathBuf>, CoreError> {
        let record = self.read_record().map_err(|e| {
            CoreError::file(
                &self.root,
                format!("not emptied: this does not look like a run folder rxalign made ({e})"),
            )
        })?;
        // The checkpoints its stages wrote (`NN-kind.ckpt`, and the best
        // one `NN-kind.best.ckpt`), by the stages its record lists.
        let is_checkpoint = |name: &str| {
            record.stages.iter().any(|s| {
                let stem = format!("{:02}-{}", s.index, s.kind);
                name.strip_prefix(stem.as_str())
                    .is_some_and(|rest| rest == ".ckpt" || rest == ".best.ckpt")
            })
        };
        let ours_at_top = [RESOLVED, DRUGS, METRICS, TRAJECTORIES, VISITS, SUMMARY, TOKENIZER];
        let mut left = Vec::new();
        for entry in list_dir(&self.root)? {
            let (path, name, is_dir) = entry;
            if name == LOCK || name == RUN {
                continue;
            }
            if is_dir {
                let (ours, kept): (&NameTest<'_>, &NameTest<'_>) = match name.as_str() {
                    CHECKPOINTS if keep_checkpoints => (&is_stale_temporary, &is_checkpoint),
                    CHECKPOINTS => (
                        &|n: &str| is_checkpoint(n) || is_stale_temporary(n),
                        &|_: &str| false,
                    ),
                    PREDICTIONS => (
                        &|n: &str| n.ends_with(".jsonl") || is_stale_temporary(n),
                        &|_: &str| false,
                    ),
                    _ => (&|n: &str| n.starts_with(TFEVENTS), &|_: &str| false),
                };
                clear_dir(&path, ours, kept, &mut left)?;
            } else if ours_at_top.contains(&name.as_str()) || is_stale_temporary(&name) {
                std::fs::remove_file(&path).map_err(|e| CoreError::io(&path, e))?;
            } else {
                left.push(path);
            }
        }
        Ok(left)
    }
}

/// Which file names a rule accepts.
type NameTest<'a> = dyn Fn(&str) -> bool + 'a;

/// The prefix of TensorBoard's event files.
const TFEVENTS: &str = "events.out.tfevents.";

/// The entries of a folder: path, name, whether a folder (not following
/// links).
fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, String, bool)>, CoreError> {
    let io = |e| CoreError::io(dir, e);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let is_dir = entry.file_type().map_err(io)?.is_dir();
        out.push((
            entry.path(),
            entry.file_name().to_string_lossy().into_owned(),
            is_dir,
        ));
    }
    out.sort();
    Ok(out)
}

/// Removes the files under `dir` whose names `ours` accepts, then `dir`
/// itself where that left it empty; files `keep` accepts stay unsaid, any
/// other is added to `left`.
fn clear_dir(
    dir: &Path,
    ours: &NameTest<'_>,
    keep: &NameTest<'_>,
    left: &mut Vec<PathBuf>,
) -> Result<(), CoreError> {
    let mut removed = false;
    let mut kept = false;
    for (path, name, is_dir) in list_dir(dir)? {
        if is_dir {
            clear_dir(&path, ours, keep, left)?;
            let stays = path.exists();
            kept |= stays;
            removed |= !stays;
        } else if ours(&name) {
            std::fs::remove_file(&path).map_err(|e| CoreError::io(&path, e))?;
            removed = true;
        } else {
            if !keep(&name) {
                left.push(path);
            }
            kept = true;
        }
    }
    if removed && !kept {
        std::fs::remove_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    }
    Ok(())
}

/// An experiment's folder, `runs/<experiment>`.
#[derive(Clone, Debug)]
pub struct ExperimentFolder {
    root: PathBuf,
}

impl ExperimentFolder {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The folder of one of its runs.
    pub fn run(&self, name: &str) -> RunFolder {
        RunFolder::at(self.root.join(name))
    }

    pub fn has_record(&self) -> bool {
        self.root.join(EXPERIMENT).is_file()
    }

    pub fn read_record(&self) -> Result<ExperimentRecord, CoreError> {
        let p = self.root.join(EXPERIMENT);
        version::read_versioned(&p, &read_text(&p)?, EXPERIMENT_FORMAT)
    }

    pub fn write_record(&self, record: &ExperimentRecord) -> Result<(), CoreError> {
        let io = |e| CoreError::io(&self.root, e);
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let p = self.root.join(EXPERIMENT);
        write_atomic(&p, &pretty(&p, record)?)
    }
}

#[cfg(test)]
mod tests;
