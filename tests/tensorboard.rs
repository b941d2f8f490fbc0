//! TensorBoard logs and resuming: a small run with the `tensorboard` logger writes an
//! event file; the official reader (`tests/tensorboard_read.py`, the
//! `tensorboard` package from PyPI) reads every tag back and checks it
//! against the run folder. `.ci/run` installs the package and runs the
//! ignored reader test; by hand:
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install tensorboard
//! RXALIGN_PYTHON=.venv/bin/python cargo test --test tensorboard -- --include-ignored
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const EXPERIMENT: &str = r#"// A small run with TensorBoard logs, for the tests. Takes a few seconds.
(
    schema_version: 1,
    name: "tb",
    seed: 4,
    data: (kind: "synthetic", patients: 150),
    policy: (kind: "set_encoder", hidden: 16, budget: 8),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.5)],
    stages: [
        (kind: "baselines", methods: ["cooccurrence"]),
        (kind: "classifier", hidden: 16, epochs: 3),
        (kind: "start_from", method: "classifier"),
        (kind: "sft", epochs: 2),
        (kind: "grpo", iterations: 3, visits: 4, group: 2),
        (kind: "step_grpo", iterations: 3, visits: 4, group: 2),
    ],
    eval: (trajectories: 2),
    loggers: [(kind: "tensorboard")],
)"#;

/// Runs the small experiment into `out`; returns its run folder.
fn run_small(out: &Path) -> PathBuf {
    let file = out.join("tb.ron");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .current_dir(root())
        .output()
        .expect("the binary runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    out.join("tb/base.seed=4")
}

fn event_files(run: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(run.join("tensorboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect()
}

#[test]
fn a_run_with_the_tensorboard_logger_writes_one_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_small(tmp.path());
    let files = event_files(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    // Records of scalars, texts and the HParams summaries are all there.
    for needle in [
        "classifier/val/jaccard",
        "sft/test/trajectories",
        // An editor's edit metrics: scalars, and a text with their definitions.
        "step_grpo/test/edit/lists_changed",
        "step_grpo/test/edits",
        "share of the changed lists whose Jaccard against the ground truth rose",
        // FLAME's per-drug figure, in the same text.
        "| drug | added | added right | removed | removed right |",
        "_hparams_/session_start_info",
        // A one-off method's final numbers: in HParams, not charted.
        "final/cooccurrence/jaccard",
    ] {
        assert!(has(needle), "{needle} not in the event file");
    }
    assert!(
        !has("cooccurrence/test/jaccard"),
        "a one-point chart of a baseline"
    );
    // Trajectory texts name the drugs.
    let drugs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("drugs.json")).unwrap()).unwrap();
    let named = drugs["drugs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            has(&format!(
                "{} ({})",
                d["code"].as_str().unwrap(),
                d["name"].as_str().unwrap()
            ))
        })
        .count();
    assert!(named > 0, "no drug named in the trajectory texts");
}

#[test]
#[ignore = "needs the `tensorboard` Python package (RXALIGN_PYTHON); .ci/run runs it"]
fn the_official_reader_reads_every_tag_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_small(tmp.path());
    let python = std::env::var("RXALIGN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root().join("tests/tensorboard_read.py"))
        .arg(&run)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tensorboard_read: ok"), "{stdout}");
    println!("{stdout}");
}

#[test]
fn an_unfinished_run_resumes_from_its_checkpoints_to_the_same_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_small(tmp.path());
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    let checkpoints: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for stage in ["03-sft.ckpt", "04-grpo.ckpt", "05-step_grpo.ckpt"] {
        assert!(checkpoints.contains(&stage.to_string()), "{checkpoints:?}");
    }
    // An interruption before the summary: the run is unfinished, its
    // checkpoints stay, and the rerun resumes from them.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let stamp = std::fs::metadata(run.join("checkpoints/03-sft.ckpt"))
        .unwrap()
        .modified()
        .unwrap();
    run_small(tmp.path());
    assert_eq!(
        std::fs::read_to_string(run.join("summary.json")).unwrap(),
        summary
    );
    let after = std::fs::metadata(run.join("checkpoints/03-sft.ckpt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        stamp, after,
        "the finished SFT checkpoint was resumed, not trained again"
    );
}
