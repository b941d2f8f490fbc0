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
}
