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

#[test]
fn plan_refuses_a_device_list_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = |name: &str, devices: &str| {
        let file = tmp.path().join(format!("{name}.ron"));
        std::fs::write(
            &file,
            format!(
                r#"(
    schema_version: 1,
    name: "{name}",
{devices}
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["cooccurrence"])],
)"#
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rxalign"))
            .args(["plan", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // `device` and `devices` both: said once, at `devices`.
    let both = plan(
        "both",
        "    device: \"cpu\",\n    devices: [\"cuda:0\", \"cuda:1\"],",
    );
    assert!(
        both.lines()
            .any(|l| l.contains("both.ron:5:") && l.contains("`device` and `devices` both")),
        "{both}"
    );
    let cpu = plan("cpu", "    devices: [\"cuda:0\", \"cpu\"],");
    let want = if cfg!(feature = "distributed") {
        "`cpu` is not a CUDA GPU"
    } else {
        "build with `cargo build --release --features cuda,distributed`"
    };
    assert!(
        cpu.lines()
            .any(|l| l.contains("cpu.ron:4:") && l.contains("`devices`") && l.contains(want)),
        "{cpu}"
    );
}
