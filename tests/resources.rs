//! `rxalign plan FILE --resources` (issue #25): the estimate of a stage's
//! memory against the peak resident memory of a real run on CPU, and the
//! plan of an 8B Llama read from its `config.json` alone.

#![cfg(target_os = "linux")] // peak memory from /proc/PID/status

use std::path::{Path, PathBuf};
use std::process::Command;

use rxalign_experiment::{Plugins, load};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rxalign() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rxalign"));
    c.current_dir(root());
    c
}

/// Runs `command` to its end; returns its peak resident memory in bytes:
/// `VmHWM` of `/proc/PID/status` (the high-water mark, which only grows),
/// read every 5 ms while it runs. The last reading before the process
/// exits is its peak unless the peak came in its last 5 ms; the stages
/// measured here are followed by seconds of evaluation and writing.
fn peak_rss(mut command: Command) -> u64 {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib * 1024);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "the run failed: {exit}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(peak > 0, "no VmHWM read from {status}");
    peak
}

/// The tiny Llama of `experiments/lm-tiny.ron` (its templates), SFT on one
/// half of 60 patients at batch 2, then one GRPO iteration of `visits ×
/// group` rollouts on the other half.
fn lm_file(dir: &Path, visits: usize, group: usize) -> PathBuf {
    // Absolute: the estimate (this process) and the run read them.
    let t = root().join("experiments/lm-tiny");
    let t = t.display();
    let text = format!(
        r#"(
    schema_version: 1,
    name: "mem-{visits}x{group}",
    seed: 0,
    data: (kind: "synthetic", patients: 60, seed: 0),
    init_list: (kind: "empty"),
    policy: (
        kind: "llama",
        scratch: (layers: 2, heads: 4, kv_heads: 2, head_dim: 16, intermediate: 128, vocab: 768),
        prompts: "add_remove",
        templates: (
            system: "{t}/system.txt",
            add: "{t}/add.txt",
            remove: "{t}/remove.txt",
            edit: "{t}/edit.txt",
        ),
        max_lines: 10,
        max_line_tokens: 8,
        note_chars: 60,
        act_batch: 4,
    ),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "sft", epochs: 1, batch_size: 2, lr: 0.003, eval_every: 0, patients: (part: 1, of: 2)),
        (kind: "grpo", iterations: 1, visits: {visits}, group: {group}, lr: 0.0003, eval_every: 0,
            patients: (part: 2, of: 2)),
    ],
    eval: (splits: ["test"], trajectories: 0),
)"#
    );
    let path = dir.join(format!("mem-{visits}x{group}.ron"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The estimated peak of the file's stage of `kind` (prompts measured on
/// the data, as `plan --resources` does by default).
fn estimate(file: &Path, kind: &str) -> u64 {
    let plugins = Plugins::builtin();
    let (_, plans) = load(file, &plugins).unwrap();
    let stages = rxalign_experiment::resources::estimate(&plans[0], None).unwrap();
    let stage = stages.iter().find(|s| s.stage.starts_with(kind)).unwrap();
    u64::try_from(stage.footprint.as_ref().unwrap().peak_bytes()).unwrap()
}

fn mib(bytes: f64) -> f64 {
    bytes / (1u64 << 20) as f64
}

/// `estimated` within 30% of `measured`.
fn within_30_percent(estimated: f64, measured: f64) {
    eprintln!(
        "measured {:.1} MiB, estimated {:.1} MiB",
        mib(measured),
        mib(estimated)
    );
    let error = (estimated - measured).abs() / measured;
    assert!(
        error <= 0.3,
        "estimated {:.1} MiB against {:.1} MiB measured ({:.0}% off)",
        mib(estimated),
        mib(measured),
        error * 100.0
    );
}

/// What the estimate says a GRPO update of 64 rollouts (8 visits x 8) adds
/// over one of 2, against what the process's peak resident memory grows by
/// between two runs that differ only there (the binary, the data, the
/// tokenizer, SFT and evaluation are the same in both and cancel). The
/// update of 64 rollouts is the peak of its run (its activations dwarf the
/// rest; a group reads each prompt once and attention keeps no scores, so
/// 16 rollouts no longer did: 78 MiB). Measured once: 406.3 MiB grown,
/// 433.9 MiB estimated.
#[test]
fn a_grpo_update_grows_peak_memory_by_its_estimate_within_30_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let (small, large) = (lm_file(tmp.path(), 1, 2), lm_file(tmp.path(), 8, 8));
    let measure = |file: &Path| {
        let mut c = rxalign();
        c.arg("run").arg(file).arg("--out").arg(tmp.path().join("runs"));
        peak_rss(c)
    };
    let grown = measure(&large) as f64 - measure(&small) as f64;
    let estimated = estimate(&large, "grpo") as f64 - estimate(&small, "grpo") as f64;
    assert!(mib(grown) > 100.0, "the larger update must dominate: {grown}");
    within_30_percent(estimated, grown);
}

/// SmolLM2-135M-Instruct under LoRA (rank 32 on all projections, as
/// `experiments/lm-smollm2.ron`), one SFT epoch on 6 patients at batch 2:
/// the weights (550 MiB) and the step's activations (about 1.1 GiB) are
/// its peak. Measured: the run's peak resident memory less that of `rxalign
/// plan FILE --resources` on the same file (the binary, the data and the
/// tokenizer, without the model). Measured once: 1722.5 MiB against
/// 1533.1 MiB estimated (before the attention backward's blocks were
/// counted as two, not four: a few MiB less now). Needs the converted model in RXALIGN_LM_DIR (`.ci/run`'s LM
/// step); takes about 5 minutes (dev profile, 2 cores).
#[test]
fn smollm2_sft_peak_memory_matches_the_estimate_within_30_percent() {
    let Some(model) = std::env::var_os("RXALIGN_LM_DIR").map(PathBuf::from) else {
        eprintln!("skipped: RXALIGN_LM_DIR is not set (.ci/run converts SmolLM2-135M-Instruct and sets it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("smol.ron");
    let text = format!(
        r#"(
    schema_version: 1,
    name: "mem-smol",
    seed: 0,
    data: (kind: "synthetic", patients: 6, seed: 0),
    init_list: (kind: "empty"),
    policy: (
        kind: "llama",
        model: "{}",
        lora: (rank: 32, alpha: 64.0,
            targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        prompts: "add_remove",
        max_lines: 3,
        max_line_tokens: 8,
        note_chars: 60,
        act_batch: 2,
    ),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "sft", epochs: 1, batch_size: 2, lr: 0.0003, eval_every: 0)],
    eval: (splits: ["test"], trajectories: 0),
)"#,
        model.display()
    );
    std::fs::write(&file, text).unwrap();
    let mut run = rxalign();
    run.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(tmp.path().join("runs"));
    let mut plan = rxalign();
    plan.arg("plan").arg(&file).arg("--resources");
    let grown = peak_rss(run) as f64 - peak_rss(plan) as f64;
    within_30_percent(estimate(&file, "sft") as f64, grown);
}

/// The guide's 8B plan: Llama-3-8B's published parameter count, LoRA's,
/// read from the folder's config.json alone (no weights, no tokenizer).
/// `rxalign plan FILE --resources --prompt-tokens 512` from the root.
fn plan(file: &Path) -> std::process::Output {
    rxalign()
        .args([
            "plan",
            file.to_str().unwrap(),
            "--resources",
            "--prompt-tokens",
            "512",
        ])
        .output()
        .unwrap()
}

/// [`plan`]'s standard output; it must succeed.
fn planned(file: &Path) -> String {
    let out = plan(file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn an_8b_llama_is_planned_from_its_config_json() {
    let text = planned(Path::new("experiments/llama-3-8b-editor.ron"));
    // 8,030,261,248 (Meta's 8.03B) + 83,886,080 adapters of rank 32.
    assert!(
        text.contains("parameters 8,114,147,328 (83,886,080 trainable)"),
        "{text}"
    );
    assert!(text.contains("Adam state 640.0 MiB"), "{text}");
    assert!(text.contains("weights 30.2 GiB"), "{text}");
    assert!(!std::fs::exists(root().join("experiments/llama-3-8b/model.safetensors")).unwrap());
}

/// `experiments/llama-3-8b-editor.ron` with `precision` set in its policy.
fn editor_with(dir: &Path, precision: &str, lora: bool) -> PathBuf {
    let text = std::fs::read_to_string(root().join("experiments/llama-3-8b-editor.ron")).unwrap();
    let mut text = text.replacen(
        "        prompts: \"add_remove\",",
        &format!("        prompts: \"add_remove\",\n        precision: {precision},"),
        1,
    );
    if !lora {
        let start = text.find("        lora: (").unwrap();
        let end = start + text[start..].find("        ),\n").unwrap() + "        ),\n".len();
        text.replace_range(start..end, "");
    }
    let file = dir.join(format!("editor-{}.ron", precision.trim_matches('"')));
    std::fs::write(&file, text).unwrap();
    file
}

/// Issue #25: `precision: "bf16"` keeps the 8B editor's weight matrices in 2
/// bytes (15.3 GiB of weights instead of 30.2), and `plan` refuses, with
/// the file and line, a precision without LoRA (every weight trains) or
/// one that does not exist.
#[test]
fn bf16_weights_halve_the_plan_and_bad_precisions_are_refused_at_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let text = planned(&editor_with(tmp.path(), "\"bf16\"", true));
    assert!(
        text.contains("weight matrices in bf16 (2 bytes a value)"),
        "{text}"
    );
    // (8,030,261,248 - 65 norms of 4096) x 2 + (266,240 + 83,886,080) x 4 bytes.
    assert!(text.contains("weights 15.3 GiB"), "{text}");

    for (precision, lora, words) in [
        ("\"bf16\"", false, ["precision", "needs `model` and `lora`"]),
        ("\"fp8\"", true, ["precision", "unknown precision `fp8`"]),
    ] {
        let file = editor_with(tmp.path(), precision, lora);
        let out = plan(&file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        // FILE:LINE:COLUMN of the policy.
        assert!(err.contains(&format!("{}:", file.display())), "{err}");
        for w in words {
            assert!(err.contains(w), "no `{w}` in {err}");
        }
    }
}
