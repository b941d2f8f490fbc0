//! Running the runs of an experiment. Each run writes its run folder (see
//! `rxalign_core::run`), with one writer at a time (`run.lock`):
//!
//! - a finished run with the same settings and data is kept; with other
//!   settings or data it is replaced only with `overwrite`, and the refusal
//!   says what changed;
//! - an unfinished run (interrupted or failed) with the same settings and
//!   data resumes from its checkpoints; otherwise it runs afresh, and the
//!   runner says why;
//! - a folder rxalign did not make (no `run.json`) is never emptied;
//! - a run that fails, by an error or a panic, is recorded as `failed` with
//!   its reason, and the other runs go on.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rxalign_core::ddi::hex_sha256;
use rxalign_core::run::{
    Axis, DataFingerprint, DrugsRecord, EXPERIMENT_FORMAT, ExperimentFolder, ExperimentLock,
    ExperimentRecord, InputFile, PlannedRun, RUN_FORMAT, RXALIGN_VERSION, RunFolder, RunLock, RunRecord,
    RunStatus, SplitRecord, StageInfo, StageProgress, StageRef, SummaryRecord, Writer, validate_name,
};
use rxalign_core::seeded_rng;
use rxalign_policy::features::VisitFeatures;

use crate::ExperimentError;
use crate::ablation::{ResolvedRun, RunPlan};
use crate::data::LoadedData;
use crate::plugins::Plugins;
use crate::progress::{Reporter, Silent};
use crate::resolve::TypedPlan;
use crate::schema::{Experiment, NoteSource};
use crate::stage::{RunContext, Stage};

pub use rxalign_core::run::GROUND_TRUTH;

/// The note tokenizer of a run (`tokenizer.json` in its folder); the name
/// is `rxalign_core::run::TOKENIZER`, kept here for existing callers.
pub const TOKENIZER_FILE: &str = rxalign_core::run::TOKENIZER;

/// How often `run.json` is rewritten within a stage, at most.
const RECORD_EVERY: Duration = Duration::from_secs(2);

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished {
        seconds: f64,
    },
    /// Finished before, with the same settings and data: kept.
    AlreadyFinished,
    /// Failed, recorded as `failed` in its `run.json` where the folder is
    /// ours and the run was not finished.
    Failed(String),
    /// Not started, its folder left as it is: another process writes it, a
    /// folder rxalign did not make is in the way, or a finished run would
    /// be replaced without `overwrite`.
    Refused(String),
}

impl Outcome {
    /// Whether the run has its results (finished now or before).
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Finished { .. } | Self::AlreadyFinished)
    }
}

/// How runs are run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Runs at a time.
    pub jobs: usize,
    /// Replace finished runs whose settings or data changed.
    pub overwrite: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            overwrite: false,
        }
    }
}

/// The folder of an experiment's runs: `OUT/<experiment name>`.
pub fn experiment_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

/// The text of a run's `resolved.ron`.
pub fn resolved_text(plan: &RunPlan) -> Result<String, ExperimentError> {
    let resolved = ResolvedRun {
        run: plan.name.clone(),
        group: plan.group.clone(),
        seed: plan.seed,
        overrides: plan.overrides.iter().cloned().collect(),
        experiment: plan.file.clone(),
    };
    let config = ron::ser::PrettyConfig::default().struct_names(false);
    ron::ser::to_string_pretty(&resolved, config).map_err(|e| ExperimentError::Invalid(e.to_string()))
}

fn ron_text(value: &ron::Value) -> String {
    ron::to_string(value).unwrap_or_default()
}

fn overrides_of(plan: &RunPlan) -> BTreeMap<String, String> {
    plan.overrides
        .iter()
        .map(|(k, v)| (k.clone(), ron_text(v)))
        .collect()
}

/// Checks every run of a file before anything runs: the names are safe to
/// use as folders, the evaluation reports the test split, and everything
/// [`crate::resolve::check`] checks (devices, splits, every plugin's
/// settings, the stage order), all problems at once. [`crate::load`] calls it.
pub fn check_plan(exp: &Experiment, plans: &[RunPlan], plugins: &Plugins) -> Result<(), ExperimentError> {
    crate::resolve::check(exp, plans, plugins)
}

/// The plan of an experiment as `experiment.json` records it.
pub fn experiment_record<P: AsRef<RunPlan>>(exp: &Experiment, plans: &[P]) -> ExperimentRecord {
    ExperimentRecord {
        format: EXPERIMENT_FORMAT,
        name: exp.file.name.clone(),
        file: exp.path.display().to_string(),
        file_sha256: hex_sha256(exp.text.as_bytes()),
        axes: exp
            .file
            .ablations
            .grid
            .iter()
            .map(|(path, values)| Axis {
                path: path.clone(),
                // A seed set as its seeds (expansion checked the name).
                values: values
                    .values(path)
                    .unwrap_or_default()
                    .iter()
                    .map(ron_text)
                    .collect(),
            })
            .collect(),
        variants: exp
            .file
            .ablations
            .variants
            .iter()
            .map(|v| v.name.clone())
            .collect(),
        runs: plans
            .iter()
            .map(AsRef::as_ref)
            .map(|p| PlannedRun {
                name: p.name.clone(),
                group: p.group.clone(),
                seed: p.seed,
                overrides: overrides_of(p),
                group_settings_sha256: Some(group_settings_sha256(p)),
            })
            .collect(),
        rxalign_version: RXALIGN_VERSION.into(),
    }
}

/// Writes `experiment.json` into `dir` (every planned run, whichever of
/// them this process runs: processes of a cluster job array write the same
/// record).
pub fn write_plan<P: AsRef<RunPlan>>(
    dir: &Path,
    exp: &Experiment,
    plans: &[P],
) -> Result<(), ExperimentError> {
    Ok(ExperimentFolder::at(dir).write_record(&experiment_record(exp, plans))?)
}

/// Writes `experiment.json` into `dir` for a process that will run
/// `selected` (of `plans`, the whole plan), after checking, under the
/// folder's [`ExperimentLock`], that one experiment folder keeps one
/// settings per group: a run already in the folder whose group this plan
/// has with other settings (other than the seed) must be one this process
/// replaces (selected, not being written by another process, and
/// unfinished or `overwrite`); otherwise nothing is written and the error
/// says which runs and what differs. Without this, `compare` would average
/// runs of other settings as seeds of one group.
pub fn claim_plan<P: AsRef<RunPlan>>(
    dir: &Path,
    exp: &Experiment,
    plans: &[P],
    selected: &[P],
    overwrite: bool,
) -> Result<(), ExperimentError> {
    let plans: Vec<&RunPlan> = plans.iter().map(AsRef::as_ref).collect();
    let selected: Vec<&RunPlan> = selected.iter().map(AsRef::as_ref).collect();
    std::fs::create_dir_all(dir).map_err(|e| rxalign_core::CoreError::io(dir, e))?;
    let _lock = ExperimentLock::acquire(dir)?;
    let folder = ExperimentFolder::at(dir);
    let recorded = if folder.has_record() {
        folder.read_record().ok()
    } else {
        None
    };
    let hashes: BTreeMap<&str, String> = plans
        .iter()
        .map(|p| (p.group.as_str(), group_settings_sha256(p)))
        .collect();
    let mut conflicts = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| rxalign_core::CoreError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for root in entries {
        let run = RunFolder::at(&root);
        let name = run.name();
        let record = run.read_record().ok();
        let planned = recorded
            .as_ref()
            .and_then(|r| r.runs.iter().find(|p| p.name == name));
        let Some(group) = record
            .as_ref()
            .map(|r| r.group.clone())
            .or_else(|| planned.map(|p| p.group.clone()))
        else {
            continue;
        };
        let old = record
            .as_ref()
            .and_then(|r| r.group_settings_sha256.clone())
            .or_else(|| planned.and_then(|p| p.group_settings_sha256.clone()));
        let (Some(old), Some(new)) = (old, hashes.get(group.as_str())) else {
            continue;
        };
        if &old == new {
            continue;
        }
        let held = rxalign_core::run::lock::is_held(&root);
        let finished = run.is_finished();
        let replaced = selected.iter().any(|p| p.name == name) && !held && (!finished || overwrite);
        if replaced {
            continue;
        }
        let why = if held {
            "being written by another process"
        } else if finished {
            "finished"
        } else {
            "not part of this run"
        };
        let what = plans
            .iter()
            .find(|p| p.name == name)
            .or_else(|| plans.iter().find(|p| p.group == group))
            .and_then(|p| resolved_text(p).ok())
            .map(|new| {
                let old = run.read_resolved().unwrap_or_default();
                settings_changes(&old, &new)
                    .into_iter()
                    .filter(|c| !is_seed_change(c))
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty())
            .map_or("settings differ".to_string(), |c| c.join("; "));
        conflicts.push(format!("{name} (group {group}, {why}): {what}"));
    }
    if !conflicts.is_empty() {
        return Err(ExperimentError::Invalid(format!(
            "{}: this experiment folder holds runs made with other settings than {} gives their group, and this run would not replace them all, so their seeds would mix settings: {}. Nothing was run. Run every run of the group (finished ones with --overwrite), or write into another --out",
            dir.display(),
            exp.path.display(),
            conflicts.join(" | ")
        )));
    }
    folder.write_record(&experiment_record(exp, &plans))?;
    Ok(())
}

/// Whether a settings change (`path: old -> new`) is only the seed's or the
/// run's name.
fn is_seed_change(change: &str) -> bool {
    let key = change.split(": ").next().unwrap_or_default();
    matches!(key, "run" | "seed" | "experiment.seed" | "overrides.seed")
}

/// Checks, under the experiment folder's lock, that the plan in
/// `experiment.json` (where there is one) still gives this run's group the
/// settings of `plan`, and takes the run's lock before letting go of the
/// experiment's: another process that planned other settings for the group
/// since is refused or refuses this one, never both run.
fn claim_run(plan: &RunPlan, root: &Path) -> Result<RunLock, String> {
    let dir = root
        .parent()
        .filter(|d| d.join(rxalign_core::run::EXPERIMENT).is_file());
    let _experiment = match dir {
        Some(dir) => Some(ExperimentLock::acquire(dir).map_err(|e| e.to_string())?),
        None => None,
    };
    if let Some(dir) = dir
        && let Ok(record) = ExperimentFolder::at(dir).read_record()
        && let Some(planned) = record.runs.iter().find(|p| p.name == plan.name)
        && let Some(h) = &planned.group_settings_sha256
        && *h != group_settings_sha256(plan)
    {
        return Err(format!(
            "{}: another `rxalign run` has since planned group `{}` with other settings ({} in experiment.json); not started, so that the group's seeds do not mix settings",
            dir.join(rxalign_core::run::EXPERIMENT).display(),
            plan.group,
            record.file
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| rxalign_core::CoreError::io(root, e).to_string())?;
    RunLock::acquire(root).map_err(|e| e.to_string())
}

/// Runs the plans, `options.jobs` at a time, each in `dir/<run name>`;
/// tells `reporter` as they go. One run's failure (or panic) leaves the
/// others. The calling thread runs plans too, beside `options.jobs - 1`
/// threads of their own (with one job, every run is on the calling thread,
/// which can be one of the CPU backend's threads:
/// [`rxalign_policy::device::join_cpu_pool`]).
pub fn run_all(
    plans: &[TypedPlan],
    plugins: &Plugins,
    dir: &Path,
    options: &RunOptions,
    reporter: &dyn Reporter,
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..plans.len()).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(plan) = plans.get(i) else { break };
            let outcome = run_one_with(plan, plugins, &dir.join(&plan.plan.name), options, reporter);
            outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(outcome);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..options.jobs.clamp(1, plans.len().max(1)) {
            scope.spawn(work);
        }
        work();
    });
    outcomes
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed("the run did not report an outcome".into())))
        .collect()
}

/// Runs one plan in `root` with the default options and no progress; a
/// failed or refused run is an error.
pub fn run_one(plan: &TypedPlan, plugins: &Plugins, root: &Path) -> Result<Outcome, ExperimentError> {
    match run_one_with(plan, plugins, root, &RunOptions::default(), &Silent) {
        Outcome::Failed(message) | Outcome::Refused(message) => Err(ExperimentError::Run {
            run: plan.plan.name.clone(),
            message,
        }),
        ok => Ok(ok),
    }
}

/// Runs one plan in `root`. A panic anywhere in it is caught and recorded
/// as the run's failure.
pub fn run_one_with(
    plan: &TypedPlan,
    plugins: &Plugins,
    root: &Path,
    options: &RunOptions,
    reporter: &dyn Reporter,
) -> Outcome {
    reporter.run_started(&plan.plan.name);
    let outcome = match catch_unwind(AssertUnwindSafe(|| {
        attempt(plan, plugins, root, options, reporter)
    })) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = format!("panicked: {}", panic_text(payload.as_ref()));
            record_panic(root, &message);
            Outcome::Failed(message)
        }
    };
    reporter.run_ended(&plan.plan.name, &outcome);
    outcome
}

/// The message of a panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Records a panic as the failure of the run in `root`, where the folder is
/// ours and the run not finished (best effort: the panic is reported either
/// way).
fn record_panic(root: &Path, message: &str) {
    let folder = RunFolder::at(root);
    let Ok(_lock) = RunLock::acquire(root) else { return };
    if let Ok(mut record) = folder.read_record()
        && record.status != RunStatus::Finished
    {
        record.status = RunStatus::Failed;
        record.error = Some(message.to_string());
        record.ended = Some(Timestamp::now());
        record.updated = Timestamp::now();
        let _ = folder.write_record(&record);
    }
}

/// Whether a folder holds nothing but, perhaps, our lock file (left by a
/// run that stopped before its `run.json`).
fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path)
        .is_ok_and(|mut d| d.all(|e| e.is_ok_and(|e| e.file_name() == rxalign_core::run::LOCK)))
}

/// The settings that differ between two `resolved.ron` texts, as
/// `path: old -> new`.
fn settings_changes(old: &str, new: &str) -> Vec<String> {
    let flat = |text: &str| -> Option<BTreeMap<String, String>> {
        let value: ron::Value = crate::schema::ron_options().from_str(text).ok()?;
        let json = serde_json::to_value(&value).ok()?;
        Some(
            crate::logger::flatten_settings(&json)
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        crate::logger::HParam::Number(x) => x.to_string(),
                        crate::logger::HParam::Text(s) => format!("{s:?}"),
                        crate::logger::HParam::Bool(b) => b.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        )
    };
    let (Some(a), Some(b)) = (flat(old), flat(new)) else {
        return vec!["resolved.ron differs".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = "(unset)".to_string();
    let out: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} -> {}",
                a.get(k).unwrap_or(&none),
                b.get(k).unwrap_or(&none)
            )
        })
        .collect();
    if out.is_empty() {
        vec!["resolved.ron differs".into()]
    } else {
        out
    }
}

/// SHA-256 of a run's settings with its seed left out: equal for the seeds
/// of one group (see [`RunRecord::group_settings_sha256`]).
pub fn group_settings_sha256(plan: &RunPlan) -> String {
    let mut file = plan.file.clone();
    file.seed = 0;
    hex_sha256(ron::to_string(&file).unwrap_or_default().as_bytes())
}

/// The top-level settings whose strings are not paths of inputs: the
/// dataset (fingerprinted by its contents, [`DataFingerprint`]), names,
/// splits and the plan itself.
const NOT_INPUTS: [&str; 8] = [
    "data",
    "name",
    "device",
    "devices",
    "seed",
    "schema_version",
    "ablations",
    "eval",
];

/// Keys whose strings name plugins, methods or rows, never files (a folder
/// `classifier` beside the file is no input of `start_from`).
const NOT_PATHS: [&str; 4] = ["kind", "name", "method", "methods"];

/// Every file or folder a run's settings name (any string setting that is
/// the path of an existing file or folder, relative to the directory
/// rxalign runs in, in whatever plugin it stands; not the dataset, nor
/// names of kinds, methods and splits), fingerprinted by its contents, by
/// setting path (`notes.tokenizer`, `init_list.path`).
pub fn named_inputs(file: &crate::ExperimentFile) -> Result<BTreeMap<String, InputFile>, ExperimentError> {
    fn walk(value: &serde_json::Value, at: String, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::String(s) if !s.is_empty() && Path::new(s).exists() => {
                out.push((at, s.clone()));
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}[{i}]"), out);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if NOT_PATHS.contains(&k.as_str()) || (at.is_empty() && NOT_INPUTS.contains(&k.as_str()))
                    {
                        continue;
                    }
                    let at = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(v, at, out);
                }
            }
            _ => {}
        }
    }
    let tree = serde_json::to_value(file).map_err(|e| ExperimentError::Invalid(e.to_string()))?;
    let mut named = Vec::new();
    walk(&tree, String::new(), &mut named);
    named
        .into_iter()
        .map(|(setting, path)| {
            let fingerprint = InputFile::of(Path::new(&path))
                .map_err(|e| ExperimentError::Invalid(format!("{setting}: {e}")))?;
            Ok((setting, fingerprint))
        })
        .collect()
}

/// What changed since a run's previous record: settings, data and the
/// files the settings name.
fn changes(
    folder: &RunFolder,
    previous: &RunRecord,
    resolved: &str,
    settings_sha256: &str,
    data: &DataFingerprint,
    named: &BTreeMap<String, InputFile>,
) -> Vec<String> {
    let mut out = Vec::new();
    if previous.settings_sha256 != settings_sha256 {
        let old = folder.read_resolved().unwrap_or_default();
        out.extend(
            settings_changes(&old, resolved)
                .into_iter()
                .map(|c| format!("setting {c}")),
        );
    }
    match &previous.data {
        Some(old) => out.extend(old.differences(data).into_iter().map(|d| format!("data: {d}"))),
        None => out.push("data: not recorded before".into()),
    }
    // Runs of older builds did not record them: not compared.
    if let Some(old) = &previous.inputs {
        out.extend(
            rxalign_core::run::input_differences(old, named)
                .into_iter()
                .map(|d| format!("input {d}")),
        );
    }
    out
}

/// A run's data, split and fingerprint.
struct Inputs {
    data: LoadedData,
    split: rxalign_core::Split,
    fingerprint: DataFingerprint,
    /// The files and folders the settings name.
    named: BTreeMap<String, InputFile>,
}

fn inputs(typed: &TypedPlan) -> Result<Inputs, ExperimentError> {
    let data = typed.data.load()?;
    let split = data.cohort.split(&typed.split);
    let fingerprint = DataFingerprint::of(&data.cohort);
    let named = named_inputs(&typed.plan.file)?;
    Ok(Inputs {
        data,
        split,
        fingerprint,
        named,
    })
}

/// One split that planned runs use: the runs, and the split's record
/// (fingerprint and diagnostics).
#[derive(Clone, Debug)]
pub struct PlannedSplit {
    pub runs: Vec<String>,
    pub record: SplitRecord,
}

/// The splits of `plans`, each once (runs with the same data settings and
/// split share one), in plan order; loads each dataset once. What `plan`
/// prints, and where it finds the splits one patient dominates.
pub fn planned_splits(plans: &[TypedPlan]) -> Result<Vec<PlannedSplit>, ExperimentError> {
    let mut data: Vec<(String, LoadedData)> = Vec::new();
    let mut out: Vec<(String, PlannedSplit)> = Vec::new();
    for typed in plans {
        let (plan, config) = (&typed.plan, &typed.split);
        let data_key =
            ron::to_string(&plan.file.data).map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let key = format!("{data_key} {config:?}");
        if let Some((_, split)) = out.iter_mut().find(|(k, _)| *k == key) {
            split.runs.push(plan.name.clone());
            continue;
        }
        if !data.iter().any(|(k, _)| *k == data_key) {
            data.push((data_key.clone(), typed.data.load()?));
        }
        let Some((_, loaded)) = data.iter().find(|(k, _)| *k == data_key) else {
            continue;
        };
        let record = SplitRecord::of(&loaded.cohort, &loaded.cohort.split(config));
        out.push((
            key,
            PlannedSplit {
                runs: vec![plan.name.clone()],
                record,
            },
        ));
    }
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

/// The learned methods' visit features, and the note tokenizer's JSON
/// where the file reads notes (trained on the training split).
pub(crate) fn features(
    notes: &NoteSource,
    cohort: &rxalign_core::Cohort,
    split: &rxalign_core::Split,
) -> Result<(VisitFeatures, Option<String>), ExperimentError> {
    Ok(match notes.tokenizer(cohort, &split.train)? {
        Some(tokenizer) => {
            let json = tokenizer
                .to_json()
                .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
            let features = tokenizer
                .visit_features(cohort)
                .map_err(|e| ExperimentError::Invalid(format!("notes: {e}")))?;
            (features, Some(json))
        }
        None => (VisitFeatures::of(cohort), None),
    })
}

/// `run.json` of a run that begins now.
fn new_record(plan: &RunPlan, settings_sha256: &str, stages: Vec<StageInfo>) -> RunRecord {
    let now = Timestamp::now();
    RunRecord {
        format: RUN_FORMAT,
        experiment: plan.file.name.clone(),
        run: plan.name.clone(),
        group: plan.group.clone(),
        seed: plan.seed,
        overrides: overrides_of(plan),
        settings_sha256: settings_sha256.to_string(),
        stages,
        status: RunStatus::Running,
        current: None,
        created: now,
        started: Some(now),
        updated: now,
        ended: None,
        error: None,
        rxalign_version: RXALIGN_VERSION.into(),
        device: plan.file.device_label(),
        data: None,
        writer: Some(Writer::this_process()),
        group_settings_sha256: Some(group_settings_sha256(plan)),
        inputs: None,
        split: None,
    }
}

/// One run, start to end; panics are caught by the caller.
fn attempt(
    typed: &TypedPlan,
    plugins: &Plugins,
    root: &Path,
    options: &RunOptions,
    reporter: &dyn Reporter,
) -> Outcome {
    let plan = &typed.plan;
    if let Err(e) = validate_name("run name", &plan.name) {
        return Outcome::Refused(e.to_string());
    }
    let resolved = match resolved_text(plan) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let settings_sha256 = hex_sha256(resolved.as_bytes());
    let folder = RunFolder::at(root);
    // Only folders rxalign made are touched.
    if root.exists() {
        if !root.is_dir() {
            return Outcome::Refused(format!(
                "{}: is in the way and is not a folder; rxalign leaves it alone",
                root.display()
            ));
        }
        if !folder.has_record() && !is_empty_dir(root) {
            let whose = if folder.path(rxalign_core::run::RESOLVED).is_file() {
                "a run folder of an older rxalign (no run.json)"
            } else {
                "a folder rxalign did not make (no run.json)"
            };
            return Outcome::Refused(format!(
                "{}: {whose} is in the way; move it away (rxalign never deletes what it did not create)",
                root.display(),
            ));
        }
    }
    let _lock = match claim_run(plan, root) {
        Ok(lock) => lock,
        Err(e) => return Outcome::Refused(e),
    };
    let previous = if folder.has_record() {
        match folder.read_record() {
            Ok(r) => Some(r),
            Err(e) => {
                return Outcome::Refused(format!(
                    "{e}; the folder is left as it is (move it away to run again)"
                ));
            }
        }
    } else {
        None
    };
    let infos: Vec<StageInfo> = typed
        .stages
        .iter()
        .enumerate()
        .map(|(index, s)| StageInfo {
            index,
            kind: s.kind().to_string(),
            method: s.method().to_string(),
        })
        .collect();
    let inputs = match inputs(typed) {
        Ok(i) => i,
        Err(e) => return fail_before_start(&folder, previous, plan, &settings_sha256, infos, e),
    };
    // Keep, resume, replace or refuse.
    let mut keep_checkpoints = false;
    if let Some(previous) = &previous {
        let changed = changes(
            &folder,
            previous,
            &resolved,
            &settings_sha256,
            &inputs.fingerprint,
            &inputs.named,
        );
        let finished = previous.status == RunStatus::Finished && folder.is_finished();
        match (finished, changed.is_empty()) {
            (true, true) => return Outcome::AlreadyFinished,
            (true, false) if !options.overwrite => {
                return Outcome::Refused(format!(
                    "it has completed with other settings or data ({}); not replaced without --overwrite",
                    changed.join("; ")
                ));
            }
            (true, false) => reporter.note(
                &plan.name,
                &format!(
                    "replacing its completed results (--overwrite): {}",
                    changed.join("; ")
                ),
            ),
            (false, true) => {
                keep_checkpoints = true;
                reporter.note(
                    &plan.name,
                    &format!("resuming ({} before) from its checkpoints", previous.status),
                );
            }
            (false, false) => reporter.note(
                &plan.name,
                &format!(
                    "running afresh ({} before, with other settings or data: {})",
                    previous.status,
                    changed.join("; ")
                ),
            ),
        }
        match folder.clear(keep_checkpoints) {
            Ok(left) if !left.is_empty() => reporter.note(
                &plan.name,
                &format!(
                    "left alone in its folder (not written by rxalign): {}",
                    left.iter()
                        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Ok(_) => {}
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
    let mut record = new_record(plan, &settings_sha256, infos);
    record.data = Some(inputs.fingerprint.clone());
    record.inputs = Some(inputs.named.clone());
    let split = SplitRecord::of(&inputs.data.cohort, &inputs.split);
    for warning in split.warnings() {
        reporter.note(&plan.name, &format!("warning: {warning}"));
    }
    record.split = Some(split);
    let started = Instant::now();
    let mut tracker = RunTracker {
        folder: folder.clone(),
        record,
        reporter,
        last_write: Instant::now(),
    };
    let result = execute(typed, plugins, &folder, &resolved, &inputs, &mut tracker);
    let finished = result.and_then(|summary| {
        folder.write_summary(&summary)?;
        tracker.record.status = RunStatus::Finished;
        tracker.record.current = None;
        tracker.record.ended = Some(Timestamp::now());
        tracker.write()
    });
    match finished {
        Ok(()) => Outcome::Finished {
            seconds: started.elapsed().as_secs_f64(),
        },
        Err(e) => {
            let message = e.to_string();
            tracker.record.status = RunStatus::Failed;
            tracker.record.error = Some(message.clone());
            tracker.record.ended = Some(Timestamp::now());
            if let Err(w) = tracker.write() {
                return Outcome::Failed(format!("{message} (and recording the failure failed: {w})"));
            }
            Outcome::Failed(message)
        }
    }
}

/// A run that failed before it started: recorded as failed, unless it
/// finished before (its results stay as they were).
fn fail_before_start(
    folder: &RunFolder,
    previous: Option<RunRecord>,
    plan: &RunPlan,
    settings_sha256: &str,
    stages: Vec<StageInfo>,
    error: ExperimentError,
) -> Outcome {
    let message = error.to_string();
    if previous.as_ref().is_some_and(|p| p.status == RunStatus::Finished) {
        return Outcome::Failed(format!("{message} (its completed results are left as they were)"));
    }
    let mut record = previous.unwrap_or_else(|| new_record(plan, settings_sha256, stages));
    record.status = RunStatus::Failed;
    record.error = Some(message.clone());
    record.writer = Some(Writer::this_process());
    record.ended = Some(Timestamp::now());
    record.updated = Timestamp::now();
    match folder.write_record(&record) {
        Ok(()) => Outcome::Failed(message),
        Err(w) => Outcome::Failed(format!("{message} (and recording the failure failed: {w})")),
    }
}

/// `run.json` as the run goes, and the progress display.
#[derive(Debug)]
pub(crate) struct RunTracker<'a> {
    folder: RunFolder,
    record: RunRecord,
    reporter: &'a dyn Reporter,
    last_write: Instant,
}

impl RunTracker<'_> {
    fn write(&mut self) -> Result<(), ExperimentError> {
        self.record.updated = Timestamp::now();
        self.folder.write_record(&self.record)?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Stage `index` begins.
    fn begin_stage(&mut self, index: usize) -> Result<(), ExperimentError> {
        let info = &self.record.stages[index];
        self.record.current = Some(StageProgress {
            index,
            kind: info.kind.clone(),
            method: info.method.clone(),
            step: 0,
            total: 0,
        });
        let (method, count) = (info.method.clone(), self.record.stages.len());
        self.reporter.stage(&self.record.run, index, count, &method);
        self.write()
    }

    /// The running stage has done `step` of `total`; `run.json` is
    /// rewritten at most every [`RECORD_EVERY`], and at the last step.
    pub(crate) fn progress(&mut self, step: u64, total: u64) -> Result<(), ExperimentError> {
        if let Some(c) = &mut self.record.current {
            c.step = step;
            c.total = total;
        }
        self.reporter.progress(&self.record.run, step, total);
        if self.last_write.elapsed() >= RECORD_EVERY || step >= total {
            self.write()?;
        }
        Ok(())
    }

    /// A line for the reader (the progress display), not recorded.
    pub(crate) fn note(&self, message: &str) {
        self.reporter.note(&self.record.run, message);
    }
}

/// The stages of a run, in order, with everything they need; returns the
/// summary to write.
fn execute(
    typed: &TypedPlan,
    plugins: &Plugins,
    folder: &RunFolder,
    resolved: &str,
    inputs: &Inputs,
    tracker: &mut RunTracker<'_>,
) -> Result<SummaryRecord, ExperimentError> {
    let (plan, reward) = (&typed.plan, typed.reward.as_ref());
    let file = &plan.file;
    let root = folder.root();
    RunFolder::create(root)?;
    tracker.write()?;
    folder.write_resolved(resolved)?;
    let (data, split) = (&inputs.data, &inputs.split);
    folder.write_drugs(&DrugsRecord::of(&data.cohort))?;
    let (features, note_tokenizer) = features(&typed.notes, &data.cohort, split)?;
    if let Some(json) = note_tokenizer {
        rxalign_core::run::write_atomic(&folder.path(TOKENIZER_FILE), json.as_bytes())?;
    }
    let policy = typed.policy.build(&rxalign_policy::family::FamilyContext {
        cohort: &data.cohort,
        features: &features,
    })?;
    let start = plugins.init_list.build(&file.init_list, &data.cohort)?;
    let loggers = file
        .loggers
        .iter()
        .map(|spec| plugins.logger.build(spec, &root.to_path_buf()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rng = seeded_rng(file.seed, "run");
    // A tracker for the context while the stages run; its record comes
    // back when they end.
    let inner = RunTracker {
        folder: tracker.folder.clone(),
        record: tracker.record.clone(),
        reporter: tracker.reporter,
        last_write: tracker.last_write,
    };
    let mut ctx = RunContext {
        data,
        split,
        reward,
        features,
        start: std::sync::Arc::from(start),
        artifacts: crate::stage::Artifacts::default(),
        eval: &file.eval,
        folder,
        rng: &mut rng,
        seed: file.seed,
        devices: typed.devices.clone(),
        policy: std::sync::Arc::from(policy),
        summary: SummaryRecord::default(),
        trajectories: Vec::new(),
        checkpoint: PathBuf::new(),
        loggers,
        stage: None,
        tracker: inner,
        curves: std::collections::HashSet::new(),
    };
    let result = run_stages(&mut ctx, plan, file, &typed.stages);
    // What the stages recorded comes back.
    let RunContext {
        tracker: back,
        summary,
        ..
    } = ctx;
    tracker.record = back.record;
    tracker.last_write = back.last_write;
    result.map(|()| summary)
}

fn run_stages(
    ctx: &mut RunContext<'_>,
    plan: &RunPlan,
    file: &crate::ExperimentFile,
    stages: &[std::sync::Arc<dyn Stage>],
) -> Result<(), ExperimentError> {
    let folder = ctx.folder;
    let data = ctx.data;
    let truth: rxalign_core::Predictions = data
        .cohort
        .visits
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.drugs.clone()))
        .collect();
    ctx.record_method(GROUND_TRUTH, 0, &truth)?;
    // `visits.jsonl` follows `trajectories.jsonl`: each visit once.
    let (mut lexicon, mut visits_written) = (None, Vec::new());
    for (index, stage) in stages.iter().enumerate() {
        ctx.stage = Some(StageRef {
            index,
            method: stage.method().to_string(),
        });
        ctx.tracker.begin_stage(index)?;
        ctx.checkpoint = folder
            .checkpoints()
            .join(format!("{index:02}-{}.ckpt", stage.kind()));
        // The last guard: a panic in a stage fails this run only.
        match catch_unwind(AssertUnwindSafe(|| stage.run(ctx))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ExperimentError::Run {
                    run: plan.name.clone(),
                    message: format!("stages[{index}] `{}`: {e}", stage.kind()),
                });
            }
            Err(payload) => {
                return Err(ExperimentError::Run {
                    run: plan.name.clone(),
                    message: format!(
                        "stages[{index}] `{}` panicked: {}",
                        stage.kind(),
                        panic_text(payload.as_ref())
                    ),
                });
            }
        }
        folder.write_trajectories(&ctx.trajectories)?;
        crate::visits::write(folder, data, &mut lexicon, &ctx.trajectories, &mut visits_written)?;
        for logger in &mut ctx.loggers {
            logger.flush()?;
        }
    }
    ctx.stage = None;
    if !ctx.loggers.is_empty() {
        write_hparams(ctx, plan, file)?;
    }
    Ok(())
}

/// The run's settings, the tags of its learned methods' final test metrics
/// (logged scalars) and the final numbers of its one-off methods
/// (`final/<method>/<metric>`), for TensorBoard's HParams view.
fn write_hparams(
    ctx: &mut RunContext<'_>,
    plan: &RunPlan,
    file: &crate::ExperimentFile,
) -> Result<(), ExperimentError> {
    let settings = serde_json::to_value(file).map_err(|e| ExperimentError::Invalid(e.to_string()))?;
    let mut hparams = crate::logger::flatten_settings(&settings);
    hparams.insert("run".into(), crate::logger::HParam::Text(plan.name.clone()));
    let mut tags: Vec<String> = Vec::new();
    for (method, m) in &ctx.summary.methods {
        if ctx.curves.contains(method) {
            tags.extend(
                m.metrics
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(name, _)| crate::logger::metric_tag(method, "test", name)),
            );
        } else {
            for column in rxalign_core::run::COLUMNS {
                if let Some(Some(v)) = m.metrics.get(column) {
                    hparams.insert(
                        format!("final/{method}/{column}"),
                        crate::logger::HParam::Number(*v),
                    );
                }
            }
        }
    }
    tags.sort();
    tags.dedup();
    for logger in &mut ctx.loggers {
        logger.hparams(&hparams, &tags)?;
        logger.flush()?;
    }
    Ok(())
}
