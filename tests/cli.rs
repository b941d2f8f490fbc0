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
    let all: Value = serde_json::from_str(&ok(&["eval", "--data", d, "--predictions", p, "--json"])).unwrap();
    assert!(test["prauc"].as_f64().unwrap() > 0.5);
    assert_eq!(test["visits"], all["visits"]);
    let train: Value = serde_json::from_str(&ok(&[
        "eval",
        "--data",
        d,
        "--predictions",
        p,
        "--split",
        "train",
        "--json",
    ]))
    .unwrap();
    assert_eq!(train["visits"], 0, "a test-split file has no train visits");
    assert!(ok(&["eval", "--data", d, "--predictions", p]).contains("pooled DDI rate"));

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
