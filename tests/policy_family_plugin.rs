//! The worked example of a researcher's own policy family
//! (`examples/tabular-family`, a crate that links only rxalign's floor),
//! registered under its own `kind` and trained by rxalign's own SFT and
//! step-wise GRPO loops from a RON file, with nothing of rxalign edited.

use rxalign_experiment::runner::run_one;
use rxalign_experiment::{Plugins, load};
use tabular_family::{KIND, TabularConfig};

#[test]
fn a_policy_family_of_ones_own_trains_through_the_shared_loops() {
    let mut plugins = Plugins::builtin();
    plugins.policy.register_family::<TabularConfig>(KIND).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tabular.ron");
    std::fs::write(
        &path,
        r#"(
    schema_version: 1,
    name: "tabular",
    data: (kind: "synthetic", patients: 90),
    policy: (kind: "tabular", budget: 12),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "sft", epochs: 3, lr: 0.05),
        (kind: "step_grpo", iterations: 4, visits: 4, group: 4, eval_every: 2),
    ],
    eval: (trajectories: 1),
)"#,
    )
    .unwrap();
    let (_, plans) = load(&path, &plugins).unwrap();
    run_one(&plans[0], &plugins, &tmp.path().join("run")).unwrap();
    let metrics = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |method: &str, split: &str, metric: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r["method"] == method && r["split"] == split)
            .filter_map(|r| r["metrics"][metric].as_f64())
            .collect()
    };
    // SFT's loss falls epoch by epoch; GRPO logs its exact and k3 KL; both
    // are evaluated on validation patients during training and on test
    // patients at the end.
    let loss = of("sft", "train", "loss/sft");
    assert_eq!(loss.len(), 3, "{metrics}");
    assert!(loss[2] < loss[0], "SFT loss {loss:?}");
    assert_eq!(of("step_grpo", "train", "kl/exact").len(), 4);
    assert_eq!(of("step_grpo", "train", "kl/k3").len(), 4);
    assert_eq!(
        of("step_grpo", "val", "jaccard").len(),
        2 + 1,
        "iterations 2 and 4, and the final decoding"
    );
    assert!(!of("step_grpo", "test", "jaccard").is_empty());
    let trajectories = std::fs::read_to_string(tmp.path().join("run/trajectories.jsonl")).unwrap();
    assert!(
        trajectories.contains("\"method\":\"step_grpo\""),
        "{trajectories}"
    );
    // Its settings are checked with the file, at their line.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("budget: 12", "budget: 0"),
    )
    .unwrap();
    let e = load(&path, &plugins).unwrap_err().to_string();
    assert!(e.contains("tabular.ron:5:") && e.contains("budget"), "{e}");
    // Without the registration the kind is unknown.
    let e = load(&path, &Plugins::builtin()).unwrap_err().to_string();
    assert!(e.contains("unknown policy kind `tabular`"), "{e}");
}
