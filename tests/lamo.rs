//! LAMO's grouped yes/no classifier (`(kind: "lamo")`) end to end through
//! the binary on a small synthetic clinic: a tiny random Llama with a
//! trained tokenizer, three frequency groups, a template file of the
//! experiment's; the run writes the method's predictions with scores, its
//! epoch records with the per-group losses and its summary with PRAUC.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rxalign(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "rxalign {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_tiny_grouped_lamo_run_writes_scored_predictions_and_group_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("question.txt");
    std::fs::write(&template, "{age} {sex}; {diagnoses}. Give {drug}?\n").unwrap();
    let file = tmp.path().join("lamo.ron");
    std::fs::write(
        &file,
        format!(
            r#"// A tiny LAMO run for the tests. Takes about 20 seconds.
(
    schema_version: 1,
    name: "lamo-tiny",
    data: (kind: "synthetic", patients: 8),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "baselines", methods: ["most_frequent"]),
        (
            kind: "lamo",
            model: (kind: "tiny", layers: 1, heads: 2, kv_heads: 1, head_dim: 8, vocab_size: 400),
            prompt: "{}",
            groups: (kind: "frequency", k: 3),
            lora: (rank: 4, alpha: 8.0, targets: ["q_proj", "v_proj", "o_proj"]),
            epochs: 2,
            batch_size: 128,
            lr: 0.01,
        ),
    ],
    eval: (trajectories: 1),
)"#,
            template.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("runs");
    let text = rxalign(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(text.contains("finished"), "{text}");
    let run = std::fs::read_dir(out.join("lamo-tiny"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();

    // Epoch 1 on validation, then the final evaluation at step 2.
    let records: Vec<Value> = lines(&run.join("metrics.jsonl"))
        .into_iter()
        .filter(|r| r["method"] == "lamo")
        .collect();
    let first = &records[0];
    assert_eq!(
        (first["step"].as_u64(), first["split"].as_str()),
        (Some(1), Some("val"))
    );
    for g in 0..3 {
        for key in ["loss/train", "loss/val"] {
            let name = format!("group/frequency-{g}/{key}");
            let v = first["metrics"][&name].as_f64();
            assert!(v.is_some_and(|x| x > 0.0 && x.is_finite()), "{name}: {first}");
        }
    }
    assert!(records.iter().any(|r| r["step"] == 2 && r["split"] == "test"));

    // Scores for every drug, so PRAUC exists.
    let predictions = lines(&run.join("predictions/lamo.jsonl"));
    assert!(!predictions.is_empty());
    for p in &predictions {
        let scores = p["scores"].as_object().map(|o| o.len());
        assert!(
            scores.is_some_and(|n| n > 100),
            "the clinic's 132 drugs, each scored: {p}"
        );
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let prauc = summary["methods"]["lamo"]["metrics"]["prauc"].as_f64();
    assert!(
        prauc.is_some_and(|v| v > 0.0 && v <= 1.0),
        "no PRAUC in {summary}"
    );
}
