//! `rxalign plan` resolves every run before anything trains and reports
//! every problem of a file at once, each at its line.

use std::process::Command;

#[test]
fn plan_reports_five_independent_mistakes_at_once_with_their_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("mistakes.ron");
    std::fs::write(
        &file,
        r#"(
    schema_version: 1,
    name: "mistakes",
    device: "cuda:0",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "baselines", methods: ["cooccurrence"]),
        (kind: "start_from", method: "clasifier"),
        (kind: "step_grpo", iterations: 5),
        (kind: "grpo", step_weight: 0.5),
        (kind: "step_grpo", lr: -1.0),
    ],
)"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["plan", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let at = |line: usize, needle: &str| {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!("mistakes.ron:{line}:")) && l.contains(needle)),
            "line {line} should say `{needle}`:\n{stderr}"
        );
    };
    if !cfg!(feature = "cuda") {
        at(4, "this build has no CUDA");
    }
    at(9, "reads method `clasifier`, which no earlier stage records");
    at(10, "put an `sft` stage before it");
    at(11, "`step_weight`");
    at(12, "invalid setting `lr`");
}
