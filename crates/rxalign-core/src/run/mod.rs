//! The run folder: the contract between the trainer, TensorBoard and the
//! dashboard.
//!
//! ```text
//! runs/<experiment>/<run>/
//!   resolved.ron         every setting of this run, ablation values and seed included
//!   metrics.jsonl        one line per evaluation: step, split, method, each metric
//!   trajectories.jsonl   one line per inspected visit
//!   checkpoints/
//!   summary.json         final metrics, an object keyed by method
//! ```
//!
//! Every file is written atomically (written beside its final name, then
//! renamed), so an interrupted run never leaves a half-written file, and the
//! evaluations it finished stay readable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CoreError, Trajectory};

pub const RESOLVED: &str = "resolved.ron";
pub const METRICS: &str = "metrics.jsonl";
pub const TRAJECTORIES: &str = "trajectories.jsonl";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINTS: &str = "checkpoints";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder
/// is written and synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| CoreError::file(path, "not a file path"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
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

/// One evaluation: when (`step` within `stage`), on which split, of which
/// method, and every metric by name (null where undefined).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRecord {
    pub step: u64,
    pub split: String,
    pub method: String,
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// Final metrics: for each method, the metric object of `rxalign eval --json`.
pub type Summary = BTreeMap<String, Value>;

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunFolder {
    root: PathBuf,
}

impl RunFolder {
    /// Creates the folder (and `checkpoints/`) if needed.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, CoreError> {
        let root = root.into();
        let ck = root.join(CHECKPOINTS);
        std::fs::create_dir_all(&ck).map_err(|e| CoreError::io(&ck, e))?;
        Ok(Self { root })
    }

    /// Opens an existing run folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, CoreError> {
        let root = root.into();
        if !root.join(RESOLVED).is_file() {
            return Err(CoreError::file(&root, format!("not a run folder: no {RESOLVED}")));
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join(CHECKPOINTS)
    }

    /// Whether the run finished (its summary exists).
    pub fn is_finished(&self) -> bool {
        self.path(SUMMARY).is_file()
    }

    pub fn write_resolved(&self, ron_text: &str) -> Result<(), CoreError> {
        write_atomic(&self.path(RESOLVED), ron_text.as_bytes())
    }

    pub fn read_resolved(&self) -> Result<String, CoreError> {
        let p = self.path(RESOLVED);
        std::fs::read_to_string(&p).map_err(|e| CoreError::io(&p, e))
    }

    /// Adds evaluations to `metrics.jsonl`; the file is rewritten atomically,
    /// so the lines already there survive an interruption.
    pub fn append_metrics(&self, records: &[MetricsRecord]) -> Result<(), CoreError> {
        let p = self.path(METRICS);
        let mut text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(CoreError::io(&p, e)),
        };
        for r in records {
            text.push_str(&serde_json::to_string(r).expect("a metrics record serialises"));
            text.push('\n');
        }
        write_atomic(&p, text.as_bytes())
    }

    pub fn read_metrics(&self) -> Result<Vec<MetricsRecord>, CoreError> {
        read_jsonl(&self.path(METRICS))
    }

    pub fn write_trajectories(&self, trajectories: &[Trajectory]) -> Result<(), CoreError> {
        let mut text = String::new();
        for t in trajectories {
            text.push_str(&serde_json::to_string(t).expect("a trajectory serialises"));
            text.push('\n');
        }
        write_atomic(&self.path(TRAJECTORIES), text.as_bytes())
    }

    pub fn read_trajectories(&self) -> Result<Vec<Trajectory>, CoreError> {
        read_jsonl(&self.path(TRAJECTORIES))
    }

    pub fn write_summary(&self, summary: &Summary) -> Result<(), CoreError> {
        let text = serde_json::to_string_pretty(summary).expect("a summary serialises");
        write_atomic(&self.path(SUMMARY), text.as_bytes())
    }

    pub fn read_summary(&self) -> Result<Summary, CoreError> {
        let p = self.path(SUMMARY);
        let text = std::fs::read_to_string(&p).map_err(|e| CoreError::io(&p, e))?;
        crate::jsonl::parse_line(&p, 1, &text)
    }
}

/// Reads a JSONL file; a bad line is an error naming it.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| crate::jsonl::parse_line(path, i + 1, l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_append() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunFolder::create(dir.path().join("exp/run-0")).unwrap();
        assert!(RunFolder::open(run.root()).is_err());
        run.write_resolved("(seed: 1)").unwrap();
        let run = RunFolder::open(run.root()).unwrap();
        assert_eq!(run.read_resolved().unwrap(), "(seed: 1)");
        assert!(run.checkpoints().is_dir());
        let rec = |step| MetricsRecord {
            step,
            split: "val".into(),
            method: "sft".into(),
            metrics: BTreeMap::from([("jaccard".into(), Some(0.5)), ("prauc".into(), None)]),
        };
        run.append_metrics(&[rec(1)]).unwrap();
        run.append_metrics(&[rec(2), rec(3)]).unwrap();
        let back = run.read_metrics().unwrap();
        assert_eq!(back, vec![rec(1), rec(2), rec(3)]);
        assert!(!run.is_finished());
        let summary = Summary::from([("sft".to_string(), serde_json::json!({"jaccard": 0.5}))]);
        run.write_summary(&summary).unwrap();
        assert!(run.is_finished());
        assert_eq!(run.read_summary().unwrap(), summary);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(run.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunFolder::create(dir.path()).unwrap();
        std::fs::write(
            run.path(METRICS),
            "{\"step\":1,\"split\":\"val\",\"method\":\"m\",\"metrics\":{}}\n{\"step\":\"x\"}\n",
        )
        .unwrap();
        let err = run.read_metrics().unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl:2: field `step`"), "{err}");
    }
}
