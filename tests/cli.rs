//! End-to-end tests of the `rxalign` binary on the synthetic clinic.

use std::path::Path;
use std::process::{Command, Output};

use rxalign_core::run::RunFolder;
use serde_json::Value;

fn rxalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = rxalign(args);
    assert!(
        out.status.success(),
        "rxalign {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = rxalign(args);
    assert!(!out.status.success(), "rxalign {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn synth(dir: &Path, patients: &str, seed: &str) {
    ok(&[
        "data",
        "synth",
        "--patients",
        patients,
        "--seed",
        seed,
        "--out",
        dir.to_str().unwrap(),
    ]);
}

fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn synth_is_deterministic_and_stats_show_ceiling_and_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synth(&a, "1500", "11");
    synth(&b, "1500", "11");
    assert_eq!(read_dir_bytes(&a), read_dir_bytes(&b), "same seed, same bytes");

    let json: Value = serde_json::from_str(&ok(&["data", "stats", a.to_str().unwrap(), "--json"])).unwrap();
    for key in [
        "visits",
        "patients",
        "drugs",
        "diagnoses",
        "procedures",
        "mean_drugs_per_visit",
        "ddi_rate",
        "ddi_rate_pooled",
    ] {
        assert!(json[key].is_number(), "{key}: {}", json[key]);
    }
    assert_eq!(json["patients"], 1500);
    assert!(json["drugs"].as_u64().unwrap() >= 80 && json["diagnoses"].as_u64().unwrap() >= 40);
    let m = &json["methods"];
    let get = |method: &str, metric: &str| {
        m[method][metric]
            .as_f64()
            .unwrap_or_else(|| panic!("{method}.{metric}"))
    };
    let ceiling = get("ceiling", "jaccard");
    // A recommender that sees only codes cannot reach the ceiling; one that
    // reads the notes gets closer.
    let codes = get("codes_only_rule", "jaccard");
    let notes = get("notes_and_codes_rule", "jaccard");
    assert!(codes < ceiling - 0.1);
    assert!(
        notes > codes + 0.05 && notes < ceiling,
        "notes {notes}, codes {codes}, ceiling {ceiling}"
    );
    // Most-frequent and co-occurrence land well below the ceiling.
    assert!(get("most_frequent", "jaccard") < ceiling - 0.5);
    assert!(get("cooccurrence", "jaccard") < ceiling - 0.15);
    // Prescribing everything indicated overprescribes and adds interactions,
    // by both definitions of the DDI rate.
    let gt = "ground_truth";
    assert!(get("everything_indicated", "med_count") > 1.5 * get(gt, "med_count"));
    assert!(get("everything_indicated", "overprescription_ratio") > 1.5);
    assert!(get("everything_indicated", "ddi_rate") > 1.2 * get(gt, "ddi_rate"));
    assert!(get("everything_indicated", "ddi_rate_pooled") > get(gt, "ddi_rate_pooled"));
    assert!(
        json["ddi_rate"].as_f64().unwrap() > 0.01,
        "prescriptions carry interactions"
    );

    let text = ok(&["data", "stats", a.to_str().unwrap()]);
    assert!(
        text.contains("per-visit") && text.contains("pooled") && text.contains("split seed 0"),
        "{text}"
    );
}

#[test]
fn eval_scores_any_predictions_file_with_every_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    synth(&data, "200", "3");
    let d = data.to_str().unwrap();
    let rule = data.join("rule_predictions.jsonl");
    let json: Value = serde_json::from_str(&ok(&[
        "eval",
        "--data",
        d,
        "--predictions",
        rule.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    for key in [
        "visits",
        "jaccard",
        "precision",
        "recall",
        "f1",
        "prauc",
        "ddi_rate",
        "ddi_rate_pooled",
        "med_count",
        "gt_med_count",
        "overprescription_ratio",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert!(json["prauc"].is_null(), "no scores, no PRAUC");
    let visits = std::fs::read_to_string(data.join("visits.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(json["visits"], visits);
    let clinic: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("clinic.json")).unwrap()).unwrap();
    assert_eq!(
        json["jaccard"], clinic["ceiling"]["jaccard"],
        "eval reproduces the ceiling clinic.json reports"
    );

    // A baseline's predictions carry scores, so PRAUC is defined; the test
    // split scores a subset.
    let preds = tmp.path().join("co.jsonl");
    ok(&[
        "baseline",
        "cooccurrence",
        "--data",
        d,
        "--out",
        preds.to_str().unwrap(),
        "--split",
        "test",
    ]);
    let p = preds.to_str().unwrap();
    let test: Value = serde_json::from_str(&ok(&[
        "eval",
        "--data",
        d,
        "--predictions",
        p,
        "--split",
        "test",
        "--json",
    ]))
    .unwrap();
    assert!(test["prauc"].as_f64().unwrap() > 0.5);
    assert_eq!(test["coverage"]["complete"], true);
    assert_eq!(test["visits"], test["coverage"]["expected"]);
    // Issue #12: a file that covers part of the visits scored with exit
    // code 0. Over every visit of the dataset, a test-split file is partial:
    // refused, unless --allow-partial, which reports the coverage.
    let e = fails(&["eval", "--data", d, "--predictions", p]);
    assert!(
        e.contains(&format!(
            "covers {} of the {visits} visits of the dataset",
            test["visits"]
        )) && e.contains("--allow-partial"),
        "{e}"
    );
    let all: Value = serde_json::from_str(&ok(&[
        "eval",
        "--data",
        d,
        "--predictions",
        p,
        "--allow-partial",
        "--json",
    ]))
    .unwrap();
    assert_eq!(test["visits"], all["visits"]);
    assert_eq!(all["coverage"]["complete"], false);
    assert_eq!(all["coverage"]["expected"], visits);
    assert!(all["scope"].as_str().unwrap().contains("partial"), "{all}");
    // A file with none of the split's visits is refused even so.
    let e = fails(&[
        "eval",
        "--data",
        d,
        "--predictions",
        p,
        "--split",
        "train",
        "--allow-partial",
    ]);
    assert!(
        e.contains("covers 0 of the") && e.contains("nothing to score"),
        "{e}"
    );
    let text = ok(&["eval", "--data", d, "--predictions", p, "--split", "test"]);
    assert!(text.contains("pooled DDI rate"), "{text}");

    // One line without scores: PRAUC is n/a for the file, and says why.
    let mut lines: Vec<Value> = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0].as_object_mut().unwrap().remove("scores");
    let n = lines.len();
    std::fs::write(&preds, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let one_unscored: Value = serde_json::from_str(&ok(&[
        "eval",
        "--data",
        d,
        "--predictions",
        p,
        "--split",
        "test",
        "--json",
    ]))
    .unwrap();
    assert!(one_unscored["prauc"].is_null());
    assert_eq!(one_unscored["coverage"]["without_scores"], 1);
    assert!(
        one_unscored["prauc_note"]
            .as_str()
            .unwrap()
            .contains(&format!("1 of the {n} scored lines have no `scores`")),
        "{one_unscored}"
    );
    let text = ok(&["eval", "--data", d, "--predictions", p, "--split", "test"]);
    assert!(text.contains("prauc is n/a: 1 of the"), "{text}");

    // Unknown visit ids and drug codes are errors naming the line.
    std::fs::write(
        &preds,
        "{\"visit_id\": \"P00001-V1\", \"drugs\": []}\n{\"visit_id\": \"nobody\", \"drugs\": []}\n",
    )
    .unwrap();
    let e = fails(&["eval", "--data", d, "--predictions", p]);
    assert!(
        e.contains("co.jsonl:2: field `visit_id`: visit `nobody` is not in the dataset"),
        "{e}"
    );
    std::fs::write(&preds, "{\"visit_id\": \"P00001-V1\", \"drugs\": [\"XX\"]}\n").unwrap();
    let e = fails(&["eval", "--data", d, "--predictions", p]);
    assert!(e.contains("co.jsonl:1: field `drugs`: drug code `XX`"), "{e}");
    std::fs::write(
        &preds,
        "{\"visit_id\": \"P00001-V1\", \"drugs\": [], \"scores\": {\"YY\": 0.5}}\n",
    )
    .unwrap();
    assert!(fails(&["eval", "--data", d, "--predictions", p]).contains("co.jsonl:1: field `scores`"));
    assert!(
        fails(&["eval", "--data", d, "--predictions", p, "--split", "tset"])
            .contains("known: all, train, val, test")
    );
}

#[test]
fn malformed_dataset_errors_reach_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    synth(&data, "20", "1");
    let visits = data.join("visits.jsonl");
    let text = std::fs::read_to_string(&visits).unwrap();
    let broken = text.replacen("\"drugs\":[", "\"drugs\":[\"NOPE\",", 1);
    std::fs::write(&visits, &broken).unwrap();
    let e = fails(&["data", "stats", data.to_str().unwrap()]);
    assert!(
        e.contains("visits.jsonl:1: field `drugs`: drug code `NOPE`"),
        "{e}"
    );
    assert!(
        fails(&["data", "stats", tmp.path().join("none").to_str().unwrap()]).contains("not a dataset folder")
    );
}

#[test]
fn the_main_job_writes_a_complete_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/baselines.ron");
    let text = ok(&["run", file, "--out", out]);
    assert!(
        text.contains("ceiling") && text.contains("everything_indicated"),
        "{text}"
    );
    let run = RunFolder::open(tmp.path().join("baselines/base.seed=0")).unwrap();
    let resolved = run.read_resolved().unwrap();
    assert!(
        resolved.contains("patients: 1500") && resolved.contains("ddi_rate"),
        "{resolved}"
    );
    let metrics = run.read_metrics().unwrap();
    assert_eq!(
        metrics.len(),
        7 * 2,
        "the ground truth, 3 references and 3 baselines on val and test"
    );
    assert!(
        metrics
            .iter()
            .all(|r| r.metrics.contains_key("ddi_rate_pooled") && r.metrics.contains_key("reward/outcome"))
    );
    let summary = run.read_summary().unwrap();
    for method in ["most_frequent", "cooccurrence", "everything_indicated", "ceiling"] {
        for key in [
            "jaccard",
            "ddi_rate",
            "ddi_rate_pooled",
            "med_count",
            "gt_med_count",
            "overprescription_ratio",
        ] {
            assert!(summary.metric(method, key).is_some(), "{method}.{key}");
        }
    }
    let trajectories = run.read_trajectories().unwrap();
    assert_eq!(trajectories.len(), 7 * 5);
    for t in &trajectories {
        let sum: f64 = t.steps.iter().map(|s| s.reward).sum();
        assert!((sum - t.outcome_reward).abs() < 1e-9);
        assert_eq!(t.steps.last().map(|s| &s.list), Some(&t.final_list));
    }
    // A finished run is not run again.
    let again = ok(&["run", file, "--out", out]);
    assert!(again.contains("already finished"), "{again}");
    assert_eq!(run.read_metrics().unwrap().len(), 14);
}

/// Issue #12 (other faults): a closed standard output (`rxalign run … |
/// head -1`) panicked and dropped the remaining runs. Every run still
/// finishes, and nothing panics.
#[test]
fn a_closed_standard_output_stops_printing_not_the_runs() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("two.ron");
    std::fs::write(
        &file,
        r#"(
    schema_version: 1,
    name: "two",
    seed: 0,
    data: (kind: "synthetic", patients: 60, seed: 0),
    init_list: (kind: "empty"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines")],
    eval: (splits: ["test"], trajectories: 1),
    ablations: (grid: {"seed": [0, 1]}),
)"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["run", file.to_str().unwrap(), "--out", "runs"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the binary prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("runs/two"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        assert!(
            run.join("summary.json").is_file(),
            "{} did not finish",
            run.display()
        );
    }
    // The same for a command whose whole output is one print.
    let data = tmp.path().join("d");
    synth(&data, "30", "0");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["data", "stats", data.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(out.status.success());
}

/// Issue #12 (other faults): an absurd size aborted the process instead of
/// an error naming the setting; an OS error was printed twice.
#[test]
fn absurd_sizes_and_missing_files_get_one_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let e = fails(&[
        "data",
        "synth",
        "--patients",
        "1000000000000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("setting `patients`") && e.contains("memory"), "{e}");
    assert!(!out.exists(), "nothing is written");
    synth(&out, "20", "0");
    let missing = tmp.path().join("nope.jsonl");
    let e = fails(&[
        "eval",
        "--data",
        out.to_str().unwrap(),
        "--predictions",
        missing.to_str().unwrap(),
    ]);
    assert!(e.contains("nope.jsonl"), "{e}");
    assert_eq!(e.matches("os error 2").count(), 1, "{e}");
}
