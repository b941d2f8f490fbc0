//! Finding experiments and runs on disk: what `status`, `compare`, `plot`
//! and the dashboard read.

use std::path::Path;

use super::records::{ExperimentRecord, PlannedRun, RunRecord, RunState, RunStatus, SummaryRecord};
use super::{EXPERIMENT, ExperimentFolder, RUN, RunFolder};
use crate::CoreError;

/// The sub-folders of `dir`, sorted by name.
fn subfolders(dir: &Path) -> Result<Vec<std::path::PathBuf>, CoreError> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CoreError::io(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// One run of an experiment as a reader finds it: planned in
/// `experiment.json`, with a folder, or both.
#[derive(Clone, Debug)]
pub struct RunEntry {
    pub name: String,
    pub folder: RunFolder,
    /// Its entry in the plan, where `experiment.json` lists it.
    pub planned: Option<PlannedRun>,
    /// Its `run.json`, once the run has begun.
    pub record: Option<RunRecord>,
    /// Why its `run.json` could not be read.
    pub problem: Option<String>,
}

impl RunEntry {
    /// Its state (planned when it has no `run.json` yet); `None` when its
    /// `run.json` is unreadable.
    pub fn state(&self) -> Option<RunState> {
        if self.problem.is_some() {
            return None;
        }
        Some(self.record.as_ref().map_or(RunState::Planned, RunRecord::state))
    }

    /// Its summary, when it finished.
    pub fn summary(&self) -> Option<SummaryRecord> {
        match &self.record {
            Some(r) if r.status == RunStatus::Finished => self.folder.read_summary().ok(),
            _ => None,
        }
    }
}

/// An experiment's folder: its plan and every run, planned or on disk.
#[derive(Clone, Debug)]
pub struct ExperimentView {
    pub folder: ExperimentFolder,
    pub record: Option<ExperimentRecord>,
    /// Why `experiment.json` could not be read.
    pub problem: Option<String>,
    /// Planned runs in plan order, then runs on disk that the plan lacks.
    pub runs: Vec<RunEntry>,
}

/// Reads an experiment's folder: `experiment.json` where present, and every
/// sub-folder with a `run.json`. Unreadable records are reported in the
/// entries, not as an error, so that one damaged run does not hide the
/// others.
pub fn runs_of(dir: &Path) -> Result<ExperimentView, CoreError> {
    let folder = ExperimentFolder::at(dir);
    let (record, problem) = if folder.has_record() {
        match folder.read_record() {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let read = |name: &str, planned: Option<PlannedRun>| {
        let run = folder.run(name);
        let (record, problem) = if run.has_record() {
            match run.read_record() {
                // A finished run's results must be readable: a damaged
                // summary is said, not hidden.
                Ok(r) if r.status == RunStatus::Finished => match run.read_summary() {
                    Ok(_) => (Some(r), None),
                    Err(e) => (Some(r), Some(e.to_string())),
                },
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        RunEntry {
            name: name.to_string(),
            folder: run,
            planned,
            record,
            problem,
        }
    };
    let mut runs: Vec<RunEntry> = record
        .iter()
        .flat_map(|r| r.runs.iter())
        .map(|p| read(&p.name, Some(p.clone())))
        .collect();
    for path in subfolders(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.join(RUN).is_file() && !runs.iter().any(|r| r.name == name) {
            runs.push(read(&name, None));
        }
    }
    Ok(ExperimentView {
        folder,
        record,
        problem,
        runs,
    })
}

/// Every experiment under a runs folder (`runs/`): sub-folders with an
/// `experiment.json` or with run folders. `dir` may itself be an
/// experiment's folder.
pub fn experiments(dir: &Path) -> Result<Vec<ExperimentView>, CoreError> {
    if dir.join(EXPERIMENT).is_file() || subfolders(dir)?.iter().any(|p| p.join(RUN).is_file()) {
        return Ok(vec![runs_of(dir)?]);
    }
    let mut out = Vec::new();
    for path in subfolders(dir)? {
        let has_runs =
            path.join(EXPERIMENT).is_file() || subfolders(&path)?.iter().any(|p| p.join(RUN).is_file());
        if has_runs {
            out.push(runs_of(&path)?);
        }
    }
    Ok(out)
}

/// A finished run as read back from its folder.
#[derive(Clone, Debug)]
pub struct FinishedRun {
    pub record: RunRecord,
    pub folder: RunFolder,
    pub summary: SummaryRecord,
    /// Methods in the order the run recorded them.
    pub methods: Vec<String>,
}

/// The finished runs under an experiment's folder, in name order, and how
/// many run folders are not finished. An unreadable `run.json` or
/// `summary.json` is an error naming it.
pub fn finished_runs(dir: &Path) -> Result<(Vec<FinishedRun>, usize), CoreError> {
    let (mut runs, mut unfinished) = (Vec::new(), 0);
    for path in subfolders(dir)? {
        let folder = RunFolder::at(&path);
        if !folder.has_record() {
            continue;
        }
        let record = folder.read_record()?;
        if record.status != RunStatus::Finished {
            unfinished += 1;
            continue;
        }
        let summary = folder.read_summary()?;
        let methods = summary.ordered().into_iter().map(str::to_string).collect();
        runs.push(FinishedRun {
            record,
            folder,
            summary,
            methods,
        });
    }
    Ok((runs, unfinished))
}
