//! The run and experiment folders as readers see them, and the runner's
//! guarantees: one run's failure leaves the others; results are never
//! mixed across settings or data; nothing rxalign did not make is deleted;
//! a run folder can be read while it is written; `status` after `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rxalign_core::run::{
    ExperimentFolder, RunFolder, RunLock, RunState, RunStatus, experiments, read_jsonl_live,
};
use rxalign_experiment::progress::Reporter;
use rxalign_experiment::runner::{Outcome, RunOptions, run_all, write_plan};
use rxalign_experiment::stage::{RunContext, Stage};
use rxalign_experiment::{Plugins, load};
use serde::Deserialize;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rxalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = rxalign(args);
    assert!(
        out.status.success(),
        "rxalign {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A test stage that fails on demand: by an error or by a panic.
#[derive(Debug)]
struct Explode {
    mode: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExplodeConfig {
    mode: String,
}

impl Stage for Explode {
    fn kind(&self) -> &str {
        "explode"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), rxalign_experiment::ExperimentError> {
        ctx.progress(1, 2)?;
        match self.mode.as_str() {
            "error" => Err(rxalign_experiment::ExperimentError::Invalid(
                "the loss diverged (a test stage's error)".into(),
            )),
            "panic" => panic!("a test stage panics"),
            _ => ctx.progress(2, 2),
        }
    }
}

fn plugins() -> Plugins {
    let mut p = Plugins::builtin();
    p.stage
        .register::<ExplodeConfig>("explode", |c, _| {
            Ok(Box::new(Explode { mode: c.mode }) as Box<dyn Stage>)
        })
        .unwrap();
    p
}

/// Collects the runner's notes.
#[derive(Debug, Default)]
struct Notes(Mutex<Vec<String>>);

impl Reporter for Notes {
    fn note(&self, run: &str, message: &str) {
        self.0.lock().unwrap().push(format!("{run}: {message}"));
    }
}

impl Notes {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Loads, checks and runs an experiment file's text into `out`.
fn run_text(text: &str, out: &Path, overwrite: bool, notes: &Notes) -> (Vec<String>, Vec<Outcome>) {
    let file = out.join("exp.ron");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(&file, text).unwrap();
    let plugins = plugins();
    let (exp, plans) = load(&file, &plugins).unwrap();
    let dir = out.join(&exp.file.name);
    write_plan(&dir, &exp, &plans).unwrap();
    let options = RunOptions { jobs: 2, overwrite };
    let outcomes = run_all(&plans, &plugins, &dir, &options, notes);
    (plans.into_iter().map(|p| p.plan.name).collect(), outcomes)
}

const GRID: &str = r#"(
    schema_version: 1,
    name: "grid",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [(kind: "baselines", methods: ["most_frequent"]), (kind: "explode", mode: "none")],
    ablations: (variants: [
        (name: "good", set: {}),
        (name: "error", set: {"stages[1].mode": "error"}),
        (name: "panic", set: {"stages[1].mode": "panic"}),
        (name: "good2", set: {"reward[1].weight": 0.5}),
    ]),
)"#;

#[test]
fn a_grid_with_failing_runs_finishes_the_others_and_records_each_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (names, outcomes) = run_text(GRID, tmp.path(), false, &Notes::default());
    let by_name: Vec<(&str, &Outcome)> = names.iter().map(String::as_str).zip(&outcomes).collect();
    for (name, outcome) in &by_name {
        let folder = RunFolder::open(tmp.path().join("grid").join(name)).unwrap();
        let record = folder.read_record().unwrap();
        match *name {
            "good.seed=0" | "good2.seed=0" => {
                assert!(matches!(outcome, Outcome::Finished { .. }), "{name}: {outcome:?}");
                assert_eq!(record.status, RunStatus::Finished);
                assert!(
                    folder
                        .read_summary()
                        .unwrap()
                        .methods
                        .contains_key("most_frequent")
                );
            }
            "error.seed=0" => {
                let Outcome::Failed(e) = outcome else {
                    panic!("{outcome:?}")
                };
                assert!(e.contains("stages[1] `explode`: the loss diverged"), "{e}");
                assert_eq!(record.status, RunStatus::Failed);
                assert_eq!(record.error.as_deref(), Some(e.as_str()));
            }
            "panic.seed=0" => {
                let Outcome::Failed(e) = outcome else {
                    panic!("{outcome:?}")
                };
                assert!(
                    e.contains("stages[1] `explode` panicked: a test stage panics"),
                    "{e}"
                );
                assert_eq!(record.status, RunStatus::Failed);
                assert_eq!(record.error.as_deref(), Some(e.as_str()));
            }
            other => panic!("{other}"),
        }
        if record.status == RunStatus::Failed {
            // What it finished stays readable: the first stage's metrics,
            // and where it stopped.
            let metrics = folder.read_metrics().unwrap();
            assert!(metrics.iter().any(|m| m.method == "most_frequent"));
            let current = record.current.unwrap();
            assert_eq!((current.index, current.step, current.total), (1, 1, 2));
            assert!(record.ended.is_some() && !folder.path("summary.json").exists());
        }
    }
    // `status` shows the failures with their reasons.
    let status = ok(&["status", tmp.path().to_str().unwrap()]);
    assert!(status.contains("4 run(s): 2 failed, 2 finished"), "{status}");
    assert!(
        status.contains("`explode` panicked: a test stage panics"),
        "{status}"
    );
    // A rerun keeps the finished runs and runs the failed ones again.
    let notes = Notes::default();
    let (_, again) = run_text(GRID, tmp.path(), false, &notes);
    assert_eq!(
        again
            .iter()
            .filter(|o| matches!(o, Outcome::AlreadyFinished))
            .count(),
        2
    );
    assert!(
        notes
            .take()
            .iter()
            .any(|n| n.starts_with("error.seed=0: resuming (failed before)")),
    );
}

const SMALL: &str = r#"(
    schema_version: 1,
    name: "small",
    data: (kind: "folder", path: "DATA"),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [(kind: "baselines", methods: ["most_frequent"])],
)"#;

fn write_clinic(dir: &Path, seed: u64) {
    let clinic = rxalign_data::SyntheticClinic::generate(&rxalign_data::SyntheticConfig {
        patients: 40,
        seed,
        ..Default::default()
    })
    .unwrap();
    rxalign_data::write_dataset(dir, &clinic.cohort).unwrap();
}

#[test]
fn a_run_is_not_kept_or_resumed_on_other_data_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_clinic(&data, 1);
    let text = SMALL.replace("DATA", data.to_str().unwrap());
    let notes = Notes::default();
    let (_, o) = run_text(&text, tmp.path(), false, &notes);
    assert!(matches!(o[0], Outcome::Finished { .. }), "{o:?}");
    let run = RunFolder::open(tmp.path().join("small/base.seed=0")).unwrap();
    let before = run.read_record().unwrap().data.unwrap();
    assert_eq!(before.visits, run.read_drugs().map(|_| before.visits).unwrap());
    // The same data: kept.
    let (_, o) = run_text(&text, tmp.path(), false, &notes);
    assert!(matches!(o[0], Outcome::AlreadyFinished), "{o:?}");
    // Other data under the same settings: the finished run is not replaced
    // without --overwrite, and the refusal says what changed.
    std::fs::remove_dir_all(&data).unwrap();
    write_clinic(&data, 2);
    let (_, o) = run_text(&text, tmp.path(), false, &notes);
    let Outcome::Refused(e) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        e.contains("completed with other settings or data") && e.contains("data: visits SHA-256"),
        "{e}"
    );
    assert_eq!(run.read_record().unwrap().data.as_ref(), Some(&before));
    let (_, o) = run_text(&text, tmp.path(), true, &notes);
    assert!(matches!(o[0], Outcome::Finished { .. }), "{o:?}");
    let after = run.read_record().unwrap().data.unwrap();
    assert_ne!(after.visits_sha256, before.visits_sha256);
    assert!(
        notes
            .take()
            .iter()
            .any(|n| n.contains("replacing its completed results"))
    );
    // An unfinished run on other data runs afresh (its checkpoints go) and
    // says why.
    let mut record = run.read_record().unwrap();
    record.status = RunStatus::Running;
    run.write_record(&record).unwrap();
    // A checkpoint of the run's stage 0 (`baselines`), as its run.json lists it.
    std::fs::write(run.checkpoints().join("00-baselines.ckpt"), "old").unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    write_clinic(&data, 3);
    let (_, o) = run_text(&text, tmp.path(), false, &notes);
    assert!(matches!(o[0], Outcome::Finished { .. }), "{o:?}");
    let said = notes.take();
    assert!(
        said.iter().any(|n| n
            .contains("running afresh (running before, with other settings or data: data: visits SHA-256")),
        "{said:?}"
    );
    assert!(!run.checkpoints().join("00-baselines.ckpt").exists());
}

#[test]
fn nothing_rxalign_did_not_make_is_deleted_and_changed_settings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let text = GRID.replace(", (kind: \"explode\", mode: \"none\")", "");
    let single = text.split("ablations:").next().unwrap().to_string() + ")";
    // A folder we did not make sits where a run would go.
    let theirs = tmp.path().join("grid/base.seed=0");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("thesis.tex"), "years of work").unwrap();
    let (_, o) = run_text(&single, tmp.path(), true, &Notes::default());
    let Outcome::Refused(e) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        e.contains("a folder rxalign did not make (no run.json) is in the way"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(theirs.join("thesis.tex")).unwrap(),
        "years of work"
    );
    std::fs::remove_dir_all(&theirs).unwrap();
    // A finished run whose settings changed is not replaced without
    // --overwrite; the refusal names the setting.
    let (_, o) = run_text(&single, tmp.path(), false, &Notes::default());
    assert!(matches!(o[0], Outcome::Finished { .. }), "{o:?}");
    let changed = single.replace("weight: 0.2", "weight: 0.7");
    let (_, o) = run_text(&changed, tmp.path(), false, &Notes::default());
    let Outcome::Refused(e) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        e.contains("setting experiment.reward[1].weight: 0.2 -> 0.7"),
        "{e}"
    );
    assert!(e.contains("not replaced without --overwrite"), "{e}");
    // A run.json of a newer major version is not ours to replace.
    let run = RunFolder::open(tmp.path().join("grid/base.seed=0")).unwrap();
    let newer = std::fs::read_to_string(run.path("run.json")).unwrap().replace(
        &format!("\"format\": \"{}\"", rxalign_core::run::RUN_FORMAT),
        "\"format\": \"2.0\"",
    );
    std::fs::write(run.path("run.json"), &newer).unwrap();
    let (_, o) = run_text(&changed, tmp.path(), true, &Notes::default());
    let Outcome::Refused(e) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        e.contains("run.json: format version 2.0 is newer than this rxalign reads"),
        "{e}"
    );
    assert!(e.contains("the folder is left as it is"), "{e}");
    assert_eq!(std::fs::read_to_string(run.path("run.json")).unwrap(), newer);
    assert!(run.path("summary.json").is_file());
    // Names that leave the runs folder are refused before anything runs.
    for bad in ["../escape", "a/b", ".."] {
        let file = tmp.path().join("bad.ron");
        std::fs::write(&file, single.replace("name: \"grid\"", &format!("name: {bad:?}"))).unwrap();
        let e = load(&file, &plugins()).unwrap_err().to_string();
        assert!(e.contains("bad.ron:3:") && e.contains("experiment name"), "{e}");
    }
    let out = rxalign(&[
        "run",
        tmp.path().join("bad.ron").to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(!tmp.path().parent().unwrap().join("escape").exists());
}

#[test]
fn an_experiment_without_the_test_split_is_refused_before_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.ron");
    let text = GRID.split("ablations:").next().unwrap().to_string() + ")";
    let text = text
        .replace(", (kind: \"explode\", mode: \"none\")", "")
        .replace("stages: [", "eval: (splits: [\"val\"]),\n    stages: [");
    std::fs::write(&file, text).unwrap();
    let out = rxalign(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("x.ron:") && e.contains("eval.splits [\"val\"] leaves out `test`"),
        "{e}"
    );
    assert!(!tmp.path().join("grid").exists(), "nothing ran");
}

#[test]
fn a_second_writer_of_a_run_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let single = GRID.split("ablations:").next().unwrap().to_string() + ")";
    let folder = tmp.path().join("grid/base.seed=0");
    std::fs::create_dir_all(&folder).unwrap();
    let lock = RunLock::acquire(&folder).unwrap();
    let (_, o) = run_text(&single, tmp.path(), false, &Notes::default());
    let Outcome::Refused(e) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        e.contains("another rxalign process is writing this run folder")
            && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    drop(lock);
    let (_, o) = run_text(&single, tmp.path(), false, &Notes::default());
    assert!(matches!(o[0], Outcome::Finished { .. }), "{o:?}");
}

/// A run long enough to watch: a classifier of many epochs (each logged as
/// it ends), then SFT.
const WATCHED: &str = r#"// Watched while it runs. Takes a few seconds.
(
    schema_version: 1,
    name: "watched",
    data: (kind: "synthetic", patients: 300),
    notes: (tokenizer: "none"),
    policy: (kind: "set_encoder", hidden: 16, budget: 8),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [
        (kind: "baselines", methods: ["most_frequent"]),
        (kind: "classifier", hidden: 32, epochs: EPOCHS),
        (kind: "sft", epochs: 2),
    ],
    eval: (trajectories: 1),
    ablations: (grid: {"seed": SEEDS}),
)"#;

/// One look at a run folder being written.
#[derive(Debug, Clone, PartialEq)]
struct Look {
    status: RunStatus,
    stage: Option<usize>,
    metrics: usize,
}

#[test]
fn a_run_folder_reads_while_a_real_run_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("watched.ron");
    std::fs::write(&file, WATCHED.replace("EPOCHS", "80").replace("SEEDS", "[1]")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            tmp.path().to_str().unwrap(),
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = RunFolder::at(tmp.path().join("watched/base.seed=1"));
    let mut looks: Vec<Look> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = child.try_wait().unwrap().is_some();
        if run.has_record() {
            // Every read parses: records are renamed into place, metrics
            // appended whole lines (a half-written one is skipped).
            let record = run.read_record().unwrap();
            let metrics = run.read_metrics().unwrap();
            let look = Look {
                status: record.status,
                stage: record.current.map(|c| c.index),
                metrics: metrics.len(),
            };
            if looks.last() != Some(&look) {
                looks.push(look);
            }
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the run takes too long: {looks:?}");
        std::thread::sleep(Duration::from_millis(15));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(looks.last().unwrap().status, RunStatus::Finished, "{looks:?}");
    let running: Vec<&Look> = looks.iter().filter(|l| l.status == RunStatus::Running).collect();
    // Stages advance in order, and metrics grow within the classifier's
    // stage, epoch by epoch.
    let stages: Vec<usize> = running.iter().filter_map(|l| l.stage).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{looks:?}");
    assert!(stages.contains(&1) && stages.contains(&2), "{looks:?}");
    let counts: Vec<usize> = looks.iter().map(|l| l.metrics).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{looks:?}");
    let within_classifier: std::collections::BTreeSet<usize> = running
        .iter()
        .filter(|l| l.stage == Some(1))
        .map(|l| l.metrics)
        .collect();
    assert!(within_classifier.len() >= 3, "{looks:?}");
    // Every record carries its stage and time.
    let metrics = run.read_metrics().unwrap();
    let classifier: Vec<_> = metrics.iter().filter(|m| m.method == "classifier").collect();
    assert_eq!(classifier.len(), 79 + 2, "79 epochs, then val and test");
    assert!(
        classifier
            .iter()
            .all(|m| m.stage.as_ref().is_some_and(|s| s.index == 1) && m.time.is_some())
    );
    let times: Vec<_> = classifier.iter().map(|m| m.time.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // The drug table names the drugs the predictions use.
    let drugs = run.read_drugs().unwrap();
    let predictions: Vec<serde_json::Value> = read_jsonl_live(&run.predictions_of("classifier")).unwrap();
    for p in &predictions {
        for d in p["drugs"].as_array().unwrap() {
            assert!(drugs.drugs.iter().any(|e| e.code == d.as_str().unwrap()));
        }
    }
}

fn status_lines(dir: &Path) -> String {
    ok(&["status", dir.to_str().unwrap()])
}

fn line_of<'a>(status: &'a str, run: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(&format!("{run} ")))
        .unwrap_or_else(|| panic!("no line for {run} in\n{status}"))
}

#[test]
fn status_after_kill_9_shows_the_interrupted_run_and_a_rerun_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("watched.ron");
    std::fs::write(
        &file,
        WATCHED.replace("EPOCHS", "25").replace("SEEDS", "[1, 2, 3]"),
    )
    .unwrap();
    let out = tmp.path().join("runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exp = ExperimentFolder::at(out.join("watched"));
    // Wait until the second run has begun its classifier, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let second = exp.run("base.seed=2");
        if second.has_record()
            && let Ok(r) = second.read_record()
            && r.status == RunStatus::Running
            && r.current.as_ref().is_some_and(|c| c.index >= 1)
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let status = status_lines(&out);
    assert!(status.contains("experiment watched from"), "{status}");
    assert!(line_of(&status, "base.seed=1").contains(" finished "), "{status}");
    assert!(
        line_of(&status, "base.seed=2").contains(" interrupted "),
        "{status}"
    );
    assert!(
        line_of(&status, "base.seed=2").contains("`rxalign run` resumes it"),
        "{status}"
    );
    assert!(line_of(&status, "base.seed=3").contains(" planned"), "{status}");
    let views = experiments(&out).unwrap();
    let states: Vec<_> = views[0].runs.iter().map(|r| r.state()).collect();
    assert_eq!(
        states,
        [
            Some(RunState::Finished),
            Some(RunState::Interrupted),
            Some(RunState::Planned)
        ]
    );
    // The rerun completes it; `compare` matches an uninterrupted run's.
    let again = ok(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(again.contains("base.seed=1 already finished"), "{again}");
    assert!(
        again.contains("base.seed=2: resuming (running before)"),
        "{again}"
    );
    let status = status_lines(&out);
    assert!(status.contains("3 run(s): 3 finished"), "{status}");
    let fresh = tmp.path().join("fresh");
    ok(&["run", file.to_str().unwrap(), "--out", fresh.to_str().unwrap()]);
    assert_eq!(
        ok(&["compare", out.join("watched").to_str().unwrap()]),
        ok(&["compare", fresh.join("watched").to_str().unwrap()])
    );
}

#[test]
fn plan_emits_a_slurm_job_array_of_the_planned_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("watched.ron");
    std::fs::write(
        &file,
        WATCHED.replace("EPOCHS", "2").replace("SEEDS", "[1, 2, 3]"),
    )
    .unwrap();
    let script = ok(&[
        "plan",
        file.to_str().unwrap(),
        "--emit",
        "slurm",
        "--out",
        "/shared/runs",
    ]);
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert!(script.contains("#SBATCH --array=0-2\n"), "{script}");
    assert!(
        script.contains("#SBATCH --output=/shared/runs/watched/slurm-%A_%a.log"),
        "{script}"
    );
    assert!(
        script.contains("  'base.seed=1'\n  'base.seed=2'\n  'base.seed=3'\n"),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "exec 'rxalign' run '{}' --out '/shared/runs' --only \"${{RUNS[$SLURM_ARRAY_TASK_ID]}}\"",
            file.display()
        )),
        "{script}"
    );
    // What a task runs: one run, into the shared folder, with the whole
    // plan recorded for `status`.
    let out = tmp.path().join("shared");
    ok(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--only",
        "base.seed=2",
    ]);
    let status = status_lines(&out);
    assert!(status.contains("3 run(s): 1 finished, 2 planned"), "{status}");
}

#[test]
fn a_grid_with_a_diverging_grpo_run_finishes_the_other_and_reports_the_one() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("div.ron");
    std::fs::write(
        &file,
        r#"(
    schema_version: 1,
    name: "div",
    data: (kind: "synthetic", patients: 120),
    notes: (tokenizer: "none"),
    policy: (kind: "set_encoder", hidden: 16, budget: 8),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [
        (kind: "sft", epochs: 2),
        (kind: "grpo", iterations: 6, visits: 4, group: 4, lr: 0.0005),
    ],
    ablations: (variants: [
        (name: "stable", set: {}),
        (name: "diverging", set: {"stages[1].lr": 1e12}),
    ]),
)"#,
    )
    .unwrap();
    let out = rxalign(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FAILED diverging.seed=0") && stderr.contains("1 of 2 run(s) failed"),
        "{stderr}"
    );
    let exp = ExperimentFolder::at(tmp.path().join("div"));
    assert!(exp.run("stable.seed=0").is_finished());
    let record = exp.run("diverging.seed=0").read_record().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    // The trainer's error names the stage, what diverged and what to try.
    let error = record.error.unwrap();
    assert!(error.contains("stages[1] `grpo`"), "{error}");
    assert!(
        error.contains("GRPO diverged at iteration") && error.contains("smaller `lr`"),
        "{error}"
    );
    let status = status_lines(tmp.path());
    assert!(
        line_of(&status, "diverging.seed=0").contains(" failed "),
        "{status}"
    );
    assert!(
        line_of(&status, "stable.seed=0").contains(" finished "),
        "{status}"
    );
}
