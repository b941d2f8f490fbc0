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

/// Runs `rxalign ARGS` in `dir`, which must fail; its standard error and
/// how long the command took.
fn fails_timed(dir: &std::path::Path, args: &[&str]) -> (String, std::time::Duration) {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "rxalign {args:?}:\n{stderr}");
    (stderr, took)
}

/// Whether `stderr` has a line at `line` of `file` that says `needle`.
fn says_at(stderr: &str, file: &str, line: usize, needle: &str) {
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&format!("{file}:{line}:")) && l.contains(needle)),
        "line {line} should say `{needle}`:\n{stderr}"
    );
}

/// Writes `file` into `dir`: an experiment named as the file, of one head
/// and `stages`, one a line from line 7.
fn write_stages(dir: &std::path::Path, file: &str, stages: &[&str]) {
    let name = file.trim_end_matches(".ron");
    let text = format!(
        "(\n    schema_version: 1,\n    name: \"{name}\",\n    data: (kind: \"synthetic\", patients: 60),\n    reward: [(kind: \"jaccard\", weight: 1.0)],\n    stages: [\n        {},\n    ],\n)",
        stages.join(",\n        ")
    );
    std::fs::write(dir.join(file), text).unwrap();
}

/// Issue #23: a misspelt `start_from` method passed `plan` and failed only
/// after the classifier had trained. `plan` names it at its line with the
/// closest recorded method, within a second, and `run` refuses it before
/// any work starts (no run folder).
#[test]
fn a_misspelt_start_from_method_is_named_at_its_line_with_a_suggestion_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    write_stages(
        tmp.path(),
        "x.ron",
        &[
            r#"(kind: "classifier", epochs: 1)"#,
            r#"(kind: "start_from", method: "clasifier")"#,
            r#"(kind: "sft", epochs: 1)"#,
        ],
    );
    let (e, took) = fails_timed(tmp.path(), &["plan", "x.ron"]);
    says_at(&e, "x.ron", 8, "method `clasifier`");
    says_at(&e, "x.ron", 8, "did you mean `classifier`?");
    assert_eq!(e.matches("x.ron:").count(), 1, "{e}");
    assert!(took.as_secs_f64() < 1.0, "plan took {took:?}");
    let (e, took) = fails_timed(tmp.path(), &["run", "x.ron", "--out", "runs"]);
    says_at(&e, "x.ron", 8, "did you mean `classifier`?");
    assert!(took.as_secs_f64() < 1.0, "run took {took:?}");
    assert!(!tmp.path().join("runs").exists(), "run started work");
    // A method recorded only by a later stage: the order is named.
    write_stages(
        tmp.path(),
        "z.ron",
        &[
            r#"(kind: "start_from", method: "classifier")"#,
            r#"(kind: "classifier", epochs: 1)"#,
        ],
    );
    let (e, _) = fails_timed(tmp.path(), &["plan", "z.ron"]);
    says_at(&e, "z.ron", 7, "stages[1] gives it, after this stage");
}

/// Issue #23: a stage that is present but invalid made the next stage
/// report it as missing ("put an `sft` stage before it"). An invalid `sft`
/// followed by `grpo` is said once, at the `sft` line, within a second;
/// without the `sft`, `grpo` is told what it lacks.
#[test]
fn an_invalid_sft_stage_is_reported_once_not_as_missing_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    write_stages(
        tmp.path(),
        "x.ron",
        &[
            r#"(kind: "sft", epochs: 0)"#,
            r#"(kind: "grpo", iterations: 1, group: 2)"#,
        ],
    );
    let (e, took) = fails_timed(tmp.path(), &["plan", "x.ron"]);
    says_at(&e, "x.ron", 7, "epochs");
    assert!(
        !e.contains("x.ron:8:"),
        "grpo was blamed for the invalid sft:\n{e}"
    );
    assert_eq!(e.matches("x.ron:").count(), 1, "{e}");
    assert!(took.as_secs_f64() < 1.0, "plan took {took:?}");
    write_stages(
        tmp.path(),
        "y.ron",
        &[r#"(kind: "grpo", iterations: 1, group: 2)"#],
    );
    let (e, _) = fails_timed(tmp.path(), &["plan", "y.ron"]);
    says_at(&e, "y.ron", 7, "put an `sft` stage before it");
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
