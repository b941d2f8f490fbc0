//! A structured fuzz test of experiment files (issue #22): files generated
//! from the schema's settings with good, extreme and wrong values. Every
//! file is either refused by `plan` with a message that names the file and
//! line, or planned; a planned file runs (tiny sizes) to the end, or fails
//! its run with a message and never a panic, and leaves no half-written
//! file. Byte-level mutations of experiment files and dataset folders are
//! `tests/readers.rs`'s.
//!
//! `tests/fuzz-corpus/` keeps the cases found so far (each once refused too
//! late, silently or by a panic); they are replayed first. Failing cases
//! proptest finds are kept by proptest in `fuzz_inputs.proptest-regressions`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rxalign_core::run::{RunFolder, RunStatus};
use rxalign_experiment::runner::{Outcome, RunOptions, run_all, write_plan};
use rxalign_experiment::{Plugins, load};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus")
}

/// One of the given texts; with `good`, one of the first `n` only (the
/// values every setting takes).
fn pick_of(good: bool, n: usize, options: &'static [&'static str]) -> impl Strategy<Value = String> {
    let options = if good { &options[..n] } else { options };
    proptest::sample::select(options).prop_map(str::to_string)
}

fn numbers(good: bool) -> impl Strategy<Value = String> {
    pick_of(
        good,
        2,
        &["0.001", "0.2", "0.0", "1.0", "-1.0", "2.0", "NaN", "inf", "1e308"],
    )
}

fn stage(good: bool) -> impl Strategy<Value = String> {
    let pick = move |n: usize, options: &'static [&'static str]| pick_of(good, n, options);
    prop_oneof![
        Just("(kind: \"references\")".to_string()),
        pick(
            2,
            &[
                "[\"most_frequent\"]",
                "[\"cooccurrence\", \"most_frequent\"]",
                "[]",
                "[\"nope\"]",
                "[\"most_frequent\", \"most_frequent\"]",
                "[\"cooccurence\"]",
            ]
        )
        .prop_map(|m| format!("(kind: \"baselines\", methods: {m})")),
        (
            pick(2, &["1", "2", "0"]),
            pick(3, &["0", "2", "3", "1", "1000"]),
            pick(1, &["8", "0", "100000000"]),
        )
            .prop_map(|(e, c, h)| format!(
                "(kind: \"classifier\", epochs: {e}, cross_fit: {c}, hidden: {h})"
            )),
        pick(
            2,
            &[
                "classifier",
                "most_frequent",
                "nope",
                "ground_truth",
                "clasifier",
                "most_frequnt"
            ]
        )
        .prop_map(|m| format!("(kind: \"start_from\", method: \"{m}\")")),
        (
            pick(1, &["1", "0"]),
            pick(2, &["", ", name: \"sft_b\"", ", name: \"\""]),
            numbers(good)
        )
            .prop_map(|(e, n, lr)| format!("(kind: \"sft\", epochs: {e}, lr: {lr}{n})")),
        (
            pick(2, &["grpo", "step_grpo", "grpoo"]),
            pick(1, &["1", "0"]),
            pick(1, &["2", "1", "0"]),
            numbers(good)
        )
            .prop_map(|(k, i, g, lr)| format!("(kind: \"{k}\", iterations: {i}, group: {g}, lr: {lr})")),
    ]
}

/// An experiment file's text; with `good`, only values each setting takes
/// (the stages in any order, so the plan may still refuse it).
fn experiment(good: bool) -> impl Strategy<Value = String> {
    let pick = move |n: usize, options: &'static [&'static str]| pick_of(good, n, options);
    (
        (
            pick(2, &["30", "40", "0", "1"]),
            pick(2, &["0.0", "0.2", "-0.1", "2.0", "NaN"]),
            pick(1, &["", ", visits_min: 3, visits_max: 1", ", visits_min: 0"]),
        ),
        (
            pick(2, &["none", "trained", "missing-tokenizer.json"]),
            pick(2, &["50", "2000", "0"]),
        ),
        (pick(1, &["8", "0", "100000000"]), pick(1, &["5", "0"])),
        proptest::collection::vec(
            (pick(3, &["jaccard", "ddi_rate", "overprescription", "nope", "jacard"]), numbers(good)),
            usize::from(good)..3,
        ),
        proptest::collection::vec(stage(good), usize::from(good)..5),
        (
            pick(2, &["[\"test\"]", "[\"val\", \"test\"]", "[\"val\"]", "[\"tset\"]"]),
            pick(2, &["0", "2"]),
        ),
        pick(2, &["0", "18446744073709551615", "-1", "\"one\""]),
    )
        .prop_map(|(data, notes, policy, reward, stages, eval, seed)| {
            let reward: Vec<String> = reward
                .iter()
                .map(|(k, w)| format!("(kind: \"{k}\", weight: {w})"))
                .collect();
            format!(
                "(\n    schema_version: 1,\n    name: \"fuzz\",\n    seed: {seed},\n    data: (kind: \"synthetic\", patients: {}, noise: {}{}),\n    notes: (tokenizer: \"{}\", vocab_size: {}),\n    policy: (kind: \"set_encoder\", hidden: {}, budget: {}),\n    reward: [{}],\n    stages: [\n        {}\n    ],\n    eval: (splits: {}, trajectories: {}),\n)\n",
                data.0,
                data.1,
                data.2,
                notes.0,
                notes.1,
                policy.0,
                policy.1,
                reward.join(", "),
                stages.join(",\n        "),
                eval.0,
                eval.1
            )
        })
}

/// Whether a message names `file` with a line and a column.
fn located(message: &str, file: &str) -> bool {
    message.lines().all(|l| {
        l.split(&format!("{file}:"))
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Plans `text` as `dir/x.ron`: `Ok(true)` when planned, `Ok(false)` when
/// refused with a located message, `Err` otherwise (a panic, or a message
/// without file and line, or one that blames a stage for an earlier one).
fn plan(dir: &Path, text: &str) -> Result<bool, String> {
    plan_message(dir, text).map(|m| m.is_none())
}

/// As [`plan`], with the refusal's message (`None` when planned).
fn plan_message(dir: &Path, text: &str) -> Result<Option<String>, String> {
    let file = dir.join("x.ron");
    std::fs::write(&file, text).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| load(&file, &Plugins::builtin())));
    match result {
        Err(_) => Err(format!("plan panicked on\n{text}")),
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) if located(&e.to_string(), "x.ron") => {
            let message = e.to_string();
            said_once(text, &message).map_err(|e| format!("{e}\nin\n{message}\non\n{text}"))?;
            Ok(Some(message))
        }
        Ok(Err(e)) => Err(format!("not located: {e}\non\n{text}")),
    }
}

/// A stage that is present, if invalid, is reported once: no later stage
/// is said to miss what it gives (a method it records, the policy `sft`
/// trains).
fn said_once(text: &str, message: &str) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    for said in message.lines() {
        let Some(line) = said
            .split("x.ron:")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let earlier = &lines[..line.saturating_sub(1).min(lines.len())];
        let earlier_stage = |kind_or_name: &str| {
            earlier.iter().any(|l| {
                l.trim_start().starts_with("(kind:")
                    && (l.contains(&format!("kind: \"{kind_or_name}\""))
                        || l.contains(&format!("name: \"{kind_or_name}\"")))
            })
        };
        if said.contains("put an `sft` stage before it") && earlier_stage("sft") {
            return Err(format!("line {line} is blamed for an earlier `sft` stage"));
        }
        if let Some(method) = said
            .split("reads method `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            && earlier_stage(method)
        {
            return Err(format!("line {line} is blamed for an earlier stage's `{method}`"));
        }
    }
    Ok(())
}

/// Runs a planned file in `dir`; every run finishes, or fails with a
/// message that is no panic, and leaves whole files only.
fn run(dir: &Path) -> Result<(), String> {
    let plugins = Plugins::builtin();
    let (exp, plans) = load(&dir.join("x.ron"), &plugins).map_err(|e| e.to_string())?;
    let out = dir.join("runs/fuzz");
    write_plan(&out, &exp, &plans).map_err(|e| e.to_string())?;
    let outcomes = run_all(
        &plans,
        &plugins,
        &out,
        &RunOptions::default(),
        &rxalign_experiment::progress::Silent,
    );
    for (plan, outcome) in plans.iter().zip(outcomes) {
        let plan = &plan.plan;
        let folder = RunFolder::at(out.join(&plan.name));
        let record = folder.read_record().map_err(|e| e.to_string())?;
        match outcome {
            Outcome::Finished { .. } => {
                if record.status != RunStatus::Finished || !folder.is_finished() {
                    return Err(format!("{}: finished without its records", plan.name));
                }
            }
            Outcome::Failed(m) if m.contains("panicked") => return Err(m),
            Outcome::Failed(_) if record.status != RunStatus::Failed => {
                return Err(format!("{}: failed, recorded as {}", plan.name, record.status));
            }
            Outcome::Failed(_) => {}
            other => return Err(format!("{}: {other:?}", plan.name)),
        }
        if let Some(tmp) = leftovers(folder.root()).first() {
            return Err(format!("a temporary file is left: {}", tmp.display()));
        }
    }
    Ok(())
}

/// Temporary files (`.NAME.tmp-...`) under `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(leftovers(&path));
        } else if entry.file_name().to_string_lossy().contains(".tmp-") {
            out.push(path);
        }
    }
    out
}

/// The kept cases: each is refused by `plan` with file and line, but
/// those named `run-*.ron`, which plan and run cleanly. A case's
/// `// expect: TEXT` lines must each be in the refusal, its `// lines: N`
/// is the number of problems it must report (each once).
#[test]
fn the_corpus_of_found_cases_is_refused_at_plan_or_runs() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let runs = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("run-"));
        let message = plan_message(tmp.path(), &text);
        assert_eq!(
            message.as_ref().map(Option::is_none),
            Ok(runs),
            "{}",
            file.display()
        );
        let message = message.unwrap().unwrap_or_default();
        for line in text.lines() {
            if let Some(expected) = line.trim().strip_prefix("// expect: ") {
                assert!(
                    message.contains(expected),
                    "{}: `{expected}` not said:\n{message}",
                    file.display()
                );
            }
            if let Some(n) = line.trim().strip_prefix("// lines: ") {
                assert_eq!(
                    message.matches("x.ron:").count(),
                    n.parse::<usize>().unwrap(),
                    "{}:\n{message}",
                    file.display()
                );
            }
        }
        if runs {
            run(tmp.path()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn generated_files_are_planned_or_refused_with_file_and_line(text in experiment(false)) {
        let tmp = tempfile::tempdir().unwrap();
        if let Err(e) = plan(tmp.path(), &text) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Each generated file of valid values that plans runs (tiny sizes): it
/// finishes, or fails its run cleanly. Some must plan, or the test would
/// test nothing.
#[test]
fn planned_files_run_or_fail_cleanly() {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    let config = Config {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let planned = std::cell::Cell::new(0usize);
    let result = runner.run(&experiment(true), |text| {
        let tmp = tempfile::tempdir().unwrap();
        match plan(tmp.path(), &text) {
            Err(e) => prop_assert!(false, "{}", e),
            Ok(false) => {}
            Ok(true) => {
                planned.set(planned.get() + 1);
                if let Err(e) = run(tmp.path()) {
                    prop_assert!(false, "{}\non\n{}", e, text);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!("{} of 48 generated files planned and ran", planned.get());
    assert!(
        planned.get() >= 8,
        "only {} of 48 generated files planned",
        planned.get()
    );
}
