//! The main job, end to end: `experiments/quickstart.ron` as shipped, and
//! what the README claims of it. Metrics are the same in debug and release
//! builds on one machine (all randomness comes from rxalign's seeded
//! streams); they differ in the last digits between processors (the matrix
//! kernels differ), so only what held over three seeds is asserted
//! (`experiments/generalisation.ron`).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_quickstart_learns_more_than_the_baselines_and_aligned_editors_improve_on_sft_for_unseen_patients() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args([
            "run",
            "experiments/quickstart.ron",
            "--out",
            tmp.path().to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One table with every method.
    for method in ["cooccurrence", "classifier", "sft", "grpo", "step_grpo"] {
        assert!(
            stdout.contains(&format!(" {method} ")),
            "{method} missing from:\n{stdout}"
        );
    }
    let run = tmp.path().join("quickstart/base.seed=0");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let metric = |method: &str, key: &str| {
        summary["methods"][method]["metrics"][key]
            .as_f64()
            .unwrap_or_else(|| panic!("summary.json: {method}.{key}"))
    };
    let learned = ["classifier", "sft", "grpo", "step_grpo"];
    let baselines = ["most_frequent", "cooccurrence", "everything_indicated"];
    for l in learned {
        for b in baselines {
            assert!(
                metric(l, "jaccard") > metric(b, "jaccard"),
                "{l} {} <= {b} {}",
                metric(l, "jaccard"),
                metric(b, "jaccard")
            );
        }
        // Every method carries the keys of `rxalign eval --json`.
        for key in [
            "jaccard",
            "f1",
            "ddi_rate",
            "ddi_rate_pooled",
            "med_count",
            "gt_med_count",
            "overprescription_ratio",
        ] {
            metric(l, key);
        }
        // #Med within 10% of the ground truth's.
        let ratio = metric(l, "med_count") / metric(l, "gt_med_count");
        assert!((0.9..=1.1).contains(&ratio), "{l}: #Med ratio {ratio}");
    }
    // The aligned editors, trained on patients SFT never saw, edit the
    // unseen test patients' lists better than SFT does (Jaccard).
    for aligned in ["grpo", "step_grpo"] {
        assert!(
            metric(aligned, "jaccard") > metric("sft", "jaccard"),
            "{aligned} {} <= sft {}",
            metric(aligned, "jaccard"),
            metric("sft", "jaccard")
        );
    }
    // The curves show what a stage has seen and what it has not: after SFT,
    // the outcome reward on its training patients is far above the one on
    // the validation patients.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last_outcome = |method: &str, split: &str| {
        metrics
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["method"] == method && r["split"] == split)
            .filter_map(|r| r["metrics"]["reward/outcome"].as_f64())
            .next_back()
            .unwrap_or_else(|| panic!("no {split} outcome for {method}"))
    };
    let (seen, unseen) = (last_outcome("sft", "train"), last_outcome("sft", "val"));
    assert!(seen > unseen + 0.02, "SFT outcome: train {seen}, val {unseen}");
    assert!(run.join("tensorboard").is_dir());
    // The editors' edit metrics are a count over the predictions files:
    // each editor's final lists against the classifier's (its start lists,
    // `start_from`) and the ground truth.
    for editor in ["sft", "grpo", "step_grpo"] {
        let direct = direct_edit_counts(&run, editor);
        eprintln!("{editor}: {direct:?}");
        for (key, value) in &direct {
            let recorded = summary["methods"][editor]["metrics"][key].as_f64();
            let same = match (recorded, value) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (a, b) => a == *b,
            };
            assert!(same, "{editor} {key}: summary {recorded:?}, counted {value:?}");
        }
        // FLAME's per-drug figure: each drug's additions and removals, right
        // and wrong, as the summary keeps them (`edits.drugs`).
        let per_drug = &summary["methods"][editor]["edits"]["drugs"];
        let direct = direct_drug_edits(&run, editor);
        assert!(!direct.is_empty(), "{editor} edited no drug");
        assert_eq!(
            per_drug.as_object().unwrap().len(),
            direct.len(),
            "{editor}: {per_drug}"
        );
        for (code, counts) in &direct {
            let recorded = ["added_right", "added_wrong", "removed_right", "removed_wrong"].map(|k| {
                per_drug[code][k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{editor} {code} {k}")) as usize
            });
            assert_eq!(
                &recorded, counts,
                "{editor} {code}: added right, wrong; removed right, wrong"
            );
        }
        // What was changed was kept, to be opened.
        let kept = &summary["methods"][editor]["trajectories"];
        assert_eq!(
            kept["edited"].as_f64(),
            Some(metric(editor, "edit/lists_changed"))
        );
    }
    // The edits table, with its definitions.
    assert!(
        stdout.contains("edits of the methods that start from a list"),
        "{stdout}"
    );
    assert!(stdout.contains("edit/jaccard_improved: "), "{stdout}");
}

/// The predictions file of `method` in `run`: each visit's list, by visit id.
fn lists(
    run: &std::path::Path,
    method: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    std::fs::read_to_string(run.join(format!("predictions/{method}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let drugs = v["drugs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            (v["visit_id"].as_str().unwrap().to_string(), drugs)
        })
        .collect()
}

/// Per drug, counted from the predictions files of `method`, of the
/// classifier (its start lists) and of the ground truth: `[added and
/// prescribed, added and not prescribed, removed and not prescribed,
/// removed and prescribed]`.
fn direct_drug_edits(run: &std::path::Path, method: &str) -> std::collections::BTreeMap<String, [usize; 4]> {
    let (finals, starts, truth) = (
        lists(run, method),
        lists(run, "classifier"),
        lists(run, "ground_truth"),
    );
    let mut out: std::collections::BTreeMap<String, [usize; 4]> = std::collections::BTreeMap::new();
    for (visit, end) in &finals {
        let (start, g) = (&starts[visit], &truth[visit]);
        for d in end.difference(start) {
            out.entry(d.clone()).or_default()[if g.contains(d) { 0 } else { 1 }] += 1;
        }
        for d in start.difference(end) {
            out.entry(d.clone()).or_default()[if g.contains(d) { 3 } else { 2 }] += 1;
        }
    }
    out
}

/// The edit metrics of `method` counted directly from the run's files:
/// `predictions/<method>.jsonl` (final lists), `predictions/classifier.jsonl`
/// (start lists), `predictions/ground_truth.jsonl` and the DDI pairs of
/// `drugs.json`, with the quickstart's reward (Jaccard 1, DDI rate 1,
/// overprescription 0.5) for the outcome.
fn direct_edit_counts(run: &std::path::Path, method: &str) -> Vec<(&'static str, Option<f64>)> {
    use std::collections::BTreeSet;
    let read = |m: &str| lists(run, m);
    let drugs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("drugs.json")).unwrap()).unwrap();
    let ddi: BTreeSet<(String, String)> = drugs["ddi"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
            [(a.to_string(), b.to_string()), (b.to_string(), a.to_string())]
        })
        .collect();
    let jaccard = |p: &BTreeSet<String>, g: &BTreeSet<String>| {
        if p.is_empty() || g.is_empty() {
            0.0
        } else {
            p.intersection(g).count() as f64 / p.union(g).count() as f64
        }
    };
    let potential = |p: &BTreeSet<String>, g: &BTreeSet<String>| {
        let n = p.len() as f64;
        let pairs = p
            .iter()
            .flat_map(|a| p.iter().map(move |b| (a.clone(), b.clone())))
            .filter(|pair| pair.0 < pair.1 && ddi.contains(pair))
            .count() as f64;
        let ddi_rate = if p.len() < 2 {
            0.0
        } else {
            pairs / (n * (n - 1.0) / 2.0)
        };
        let extra = p.difference(g).count() as f64 / (g.len().max(1) as f64);
        jaccard(p, g) - ddi_rate - 0.5 * extra
    };
    let (finals, starts, truth) = (read(method), read("classifier"), read("ground_truth"));
    let (mut changed, mut better, mut worse, mut net) = (0usize, 0usize, 0usize, 0.0);
    let (mut rewarded, mut added, mut added_right, mut removed, mut removed_right) = (0usize, 0, 0, 0, 0);
    for (visit, end) in &finals {
        let (start, g) = (&starts[visit], &truth[visit]);
        let delta = jaccard(end, g) - jaccard(start, g);
        net += delta;
        added += end.difference(start).count();
        added_right += end.difference(start).filter(|d| g.contains(*d)).count();
        removed += start.difference(end).count();
        removed_right += start.difference(end).filter(|d| !g.contains(*d)).count();
        if end != start {
            changed += 1;
            better += usize::from(delta > 1e-9);
            worse += usize::from(delta < -1e-9);
            rewarded += usize::from(potential(end, g) - potential(start, g) > 1e-9);
        }
    }
    let n = finals.len() as f64;
    // A share of nothing is undefined (null in the summary).
    let share = |k: usize, of: usize| (of > 0).then(|| k as f64 / of as f64);
    vec![
        ("edit/lists_changed", Some(changed as f64)),
        ("edit/lists_changed_share", Some(changed as f64 / n)),
        ("edit/jaccard_improved", share(better, changed)),
        ("edit/jaccard_worsened", share(worse, changed)),
        ("edit/outcome_improved", share(rewarded, changed)),
        ("edit/jaccard_net", Some(net)),
        ("edit/jaccard_net_per_visit", Some(net / n)),
        ("edit/added", Some(added as f64)),
        ("edit/added_right", share(added_right, added)),
        ("edit/removed", Some(removed as f64)),
        ("edit/removed_right", share(removed_right, removed)),
    ]
}
