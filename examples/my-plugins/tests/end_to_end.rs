//! The worked plugin crate's own command, end to end: its kinds are listed,
//! checked at their line, planned, run, compared and shown by `status`,
//! exactly as the built-ins are by `rxalign`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rxalign_cli::report::{CompareReport, StatusReport};

fn experiment() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/my-experiment.ron")
}

fn my_rxalign(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_my-rxalign"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("my-rxalign starts")
}

/// Standard output of a command that must succeed.
fn ok(args: &[&str], cwd: &Path) -> String {
    let out = my_rxalign(args, cwd);
    assert!(
        out.status.success(),
        "my-rxalign {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn its_kinds_are_listed_with_their_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let text = ok(&["plugins"], tmp.path());
    for kind in ["f_beta", "safe_previous_visit", "start_lists", "diagnosis_linear"] {
        assert!(text.contains(&format!("\n  {kind}: ")), "{kind} listed:\n{text}");
    }
    // The built-ins are still there.
    assert!(
        text.contains("\n  step_grpo: ") && text.contains("\n  jaccard: "),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["plugins", "f_beta", "--json"], tmp.path())).unwrap();
    let kinds = json[0]["kinds"].as_array().unwrap();
    assert_eq!(json[0]["slot"], "reward term");
    assert_eq!(kinds.len(), 1, "{json}");
    let beta = &kinds[0]["fields"][1];
    assert_eq!(beta["name"], "beta");
    assert_eq!(beta["type"], "number");
    assert_eq!(beta["default"], 0.5);
    assert_eq!(beta["doc"], "β: recall counts β times as much as precision.");
    assert!(
        kinds[0]["doc"]
            .as_str()
            .unwrap()
            .starts_with("The F-beta score of the list"),
        "{json}"
    );
    let family = ok(&["plugins", "diagnosis_linear"], tmp.path());
    assert!(
        family.contains("budget  unsigned integer, default 16"),
        "{family}"
    );
}

#[test]
fn a_misspelt_field_of_its_reward_term_is_refused_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(experiment()).unwrap();
    let misspelt = text.replace("beta: 0.5)", "bta: 0.5)");
    assert_ne!(misspelt, text);
    let line = misspelt.lines().position(|l| l.contains("bta: 0.5")).unwrap() + 1;
    let path = tmp.path().join("my-experiment.ron");
    std::fs::write(&path, misspelt).unwrap();
    let out = my_rxalign(&["plan", path.to_str().unwrap()], tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("my-experiment.ron:{line}:"))
            && err.contains(
                "unknown field `bta` of reward term `f_beta`; did you mean `beta`?; known fields: weight, beta"
            ),
        "{err}"
    );
}

#[test]
fn its_experiment_plans_runs_compares_and_reports_status() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment();
    let file = file.to_str().unwrap();
    let plan = ok(&["plan", file], tmp.path());
    assert!(plan.contains("2 run(s) of experiment `my-plugins`"), "{plan}");
    // A cluster's tasks call this command, which knows the file's kinds.
    let script = ok(&["plan", file, "--emit", "slurm"], tmp.path());
    assert!(script.contains("exec 'my-rxalign' run "), "{script}");

    let run = ok(&["run", file, "--out", "runs"], tmp.path());
    for method in ["start_list", "most_frequent", "sft", "step_grpo"] {
        assert!(run.contains(method), "{method} in the final table:\n{run}");
    }
    let dir = tmp.path().join("runs/my-plugins");
    // The reward term of this crate is scored in the runs' records.
    let runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let metrics = std::fs::read_to_string(runs[0].join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"reward/f_beta\":"), "{metrics}");

    let table = ok(&["compare", "runs/my-plugins"], tmp.path());
    assert!(
        table.contains("start_list") && table.contains("step_grpo"),
        "{table}"
    );

    // The JSON summary: every seed's value of each metric, checked against
    // the runs' own summary.json files.
    let report: CompareReport = serde_json::from_str(&ok(
        &["compare", "runs/my-plugins", "--format", "json"],
        tmp.path(),
    ))
    .unwrap();
    assert_eq!((report.finished_runs, report.unfinished_runs), (2, 0));
    assert_eq!(report.groups.len(), 1);
    let group = &report.groups[0];
    assert_eq!(group.seeds, [1, 2]);
    let methods: Vec<&str> = group.methods.iter().map(|m| m.method.as_str()).collect();
    for m in ["start_list", "most_frequent", "sft", "step_grpo"] {
        assert!(methods.contains(&m), "{methods:?}");
    }
    let jaccards: Vec<f64> = runs
        .iter()
        .map(|run| {
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
            s["methods"]["step_grpo"]["metrics"]["jaccard"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(jaccards.len(), 2);
    let j = &group
        .methods
        .iter()
        .find(|m| m.method == "step_grpo")
        .unwrap()
        .metrics["jaccard"];
    let mean = (jaccards[0] + jaccards[1]) / 2.0;
    let std = ((jaccards[0] - mean).powi(2) + (jaccards[1] - mean).powi(2)).sqrt();
    assert_eq!((j.n, j.seeds.as_slice()), (2, [1, 2].as_slice()));
    assert!(
        (j.mean - mean).abs() < 1e-12 && (j.std.unwrap() - std).abs() < 1e-12,
        "{j:?} vs {jaccards:?}"
    );
    assert!(report.definitions.contains_key("jaccard"));

    let status = ok(&["status", "runs"], tmp.path());
    assert!(
        status.contains("experiment my-plugins") && status.contains("2 finished"),
        "{status}"
    );
    let status: StatusReport = serde_json::from_str(&ok(&["status", "runs", "--json"], tmp.path())).unwrap();
    assert_eq!(status.experiments.len(), 1);
    let exp = &status.experiments[0];
    assert_eq!(exp.counts.get("finished"), Some(&2));
    for r in &exp.runs {
        assert_eq!(r.state, "finished");
        assert_eq!(r.last_method.as_deref(), Some("step_grpo"));
        assert!(r.test_metrics.contains_key("jaccard"), "{r:?}");
    }
}
