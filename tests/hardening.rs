//! Issue #22, the second hardening pass: nothing mixed, nothing deleted, no
//! panic. Each test names the item of the issue it covers; each failed on
//! the tree before the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rxalign_core::run::{RunFolder, RunStatus};

fn rxalign_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok_in(dir: &Path, args: &[&str]) -> String {
    let out = rxalign_in(dir, args);
    assert!(out.status.success(), "rxalign {args:?}:\n{}", text(&out));
    text(&out)
}

fn fails_in(dir: &Path, args: &[&str]) -> String {
    let out = rxalign_in(dir, args);
    assert!(
        !out.status.success(),
        "rxalign {args:?} should fail:\n{}",
        text(&out)
    );
    let all = text(&out);
    assert!(!all.contains("panicked"), "{all}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The MiniLM tokenizer kept in the repository.
fn minilm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/minilm-tokenizer/tokenizer.json")
}

/// A quick experiment (60 patients, the most-frequent baseline) whose notes
/// are read with `tok.json`, its reward's DDI weight `ddi`.
fn quick(name: &str, ddi: f64, seeds: &str) -> String {
    format!(
        r#"(
    schema_version: 1,
    name: "{name}",
    data: (kind: "synthetic", patients: 60),
    notes: (tokenizer: "tok.json"),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: {ddi})],
    stages: [(kind: "baselines", methods: ["most_frequent"])],
    ablations: (grid: {{"seed": [{seeds}]}}),
)"#
    )
}

/// Marks a finished run as interrupted (a `kill -9` during a stage), so
/// that the next `rxalign run` resumes it.
fn interrupt(run: &Path) {
    let folder = RunFolder::at(run);
    let mut record = folder.read_record().unwrap();
    record.status = RunStatus::Failed;
    record.error = Some("killed (test)".into());
    folder.write_record(&record).unwrap();
    std::fs::remove_file(folder.path(rxalign_core::run::SUMMARY)).unwrap();
}

/// Item 1: a file the experiment names (the note tokenizer) was not part of
/// the resume check: a run resumed "from its checkpoints" after the file
/// had changed, mixing the two.
#[test]
fn a_resume_after_a_named_file_changed_runs_afresh_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    std::fs::write(dir.join("x.ron"), quick("named", 0.2, "0")).unwrap();
    ok_in(dir, &["run", "x.ron", "--out", "runs"]);
    let run = dir.join("runs/named/base.seed=0");
    let record = RunFolder::at(&run).read_record().unwrap();
    let inputs = record.inputs.expect("the named files are recorded");
    assert_eq!(inputs["notes.tokenizer"].path, "tok.json");

    // Unchanged: the interrupted run resumes.
    interrupt(&run);
    let out = ok_in(dir, &["run", "x.ron", "--out", "runs"]);
    assert!(out.contains("resuming"), "{out}");

    // Changed: it runs afresh, naming the setting and the file.
    interrupt(&run);
    let other =
        std::fs::read_to_string(minilm())
            .unwrap()
            .replacen("\"max_length\":128", "\"max_length\":64", 1);
    std::fs::write(dir.join("tok.json"), other).unwrap();
    let out = ok_in(dir, &["run", "x.ron", "--out", "runs"]);
    assert!(
        !out.contains("resuming")
            && out.contains("running afresh")
            && out.contains("input notes.tokenizer: tok.json SHA-256"),
        "{out}"
    );
    // A finished run whose named file changed is not kept as it is either.
    let mut third = std::fs::read_to_string(dir.join("tok.json")).unwrap();
    third = third.replacen("\"max_length\":64", "\"max_length\":32", 1);
    std::fs::write(dir.join("tok.json"), third).unwrap();
    let e = fails_in(dir, &["run", "x.ron", "--out", "runs"]);
    assert!(e.contains("1 refused") || e.contains("refused"), "{e}");
}

/// Item 2: a second version of a file run into the same folder (another
/// seed of the same group) was accepted, and `compare` averaged the two
/// settings as seeds of one group.
#[test]
fn one_experiment_folder_keeps_one_settings_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    std::fs::write(dir.join("v1.ron"), quick("mixed", 0.2, "0, 1")).unwrap();
    std::fs::write(dir.join("v2.ron"), quick("mixed", 0.7, "0, 1")).unwrap();
    ok_in(dir, &["run", "v1.ron", "--out", "m", "--only", "base.seed=0"]);
    let e = fails_in(dir, &["run", "v2.ron", "--out", "m", "--only", "base.seed=1"]);
    assert!(
        e.contains("base.seed=0")
            && e.contains("reward[1].weight: 0.2 -> 0.7")
            && e.contains("Nothing was run"),
        "{e}"
    );
    assert!(!dir.join("m/mixed/base.seed=1").exists(), "nothing started");
    // Even with --overwrite: base.seed=0 would stay with the other settings.
    fails_in(
        dir,
        &[
            "run",
            "v2.ron",
            "--out",
            "m",
            "--only",
            "base.seed=1",
            "--overwrite",
        ],
    );
    // Replacing every run of the group is the way to change its settings.
    ok_in(dir, &["run", "v2.ron", "--out", "m", "--overwrite"]);

    // A folder mixed by hand (or by an older rxalign): `compare` keeps the
    // settings apart instead of averaging them.
    ok_in(dir, &["run", "v1.ron", "--out", "other", "--only", "base.seed=1"]);
    std::fs::remove_dir_all(dir.join("m/mixed/base.seed=1")).unwrap();
    std::fs::rename(
        dir.join("other/mixed/base.seed=1"),
        dir.join("m/mixed/base.seed=1"),
    )
    .unwrap();
    let table = ok_in(dir, &["compare", "m/mixed"]);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("most_frequent")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.starts_with("base (settings ")), "{table}");
}

/// Item 2, two processes at once: a run whose group the folder's plan has
/// meanwhile been given other settings (by another `rxalign run`) is not
/// started.
#[test]
fn a_run_whose_group_was_replanned_by_another_process_is_refused() {
    use rxalign_experiment::runner::{Outcome, RunOptions, claim_plan, run_all};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    let tok = dir.join("tok.json").display().to_string();
    let v1 = dir.join("v1.ron");
    let v2 = dir.join("v2.ron");
    std::fs::write(&v1, quick("race", 0.2, "0").replace("tok.json", &tok)).unwrap();
    std::fs::write(&v2, quick("race", 0.7, "0").replace("tok.json", &tok)).unwrap();
    let plugins = rxalign_experiment::Plugins::builtin();
    let (e1, p1) = rxalign_experiment::load(&v1, &plugins).unwrap();
    let (e2, p2) = rxalign_experiment::load(&v2, &plugins).unwrap();
    let out = dir.join("runs/race");
    // Process 1 plans, then process 2 plans before process 1's run starts.
    claim_plan(&out, &e1, &p1, &p1, false).unwrap();
    claim_plan(&out, &e2, &p2, &p2, false).unwrap();
    let outcomes = run_all(
        &p1,
        &plugins,
        &out,
        &RunOptions::default(),
        &rxalign_experiment::progress::Silent,
    );
    match &outcomes[0] {
        Outcome::Refused(m) => assert!(m.contains("other settings"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Process 2's run goes ahead; process 1 can no longer claim the group.
    let outcomes = run_all(
        &p2,
        &plugins,
        &out,
        &RunOptions::default(),
        &rxalign_experiment::progress::Silent,
    );
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(claim_plan(&out, &e1, &p1, &p1, false).is_err());
}

/// Item 3: a file a user put into a run folder was deleted when the run ran
/// again (resumed, afresh, or with --overwrite).
#[test]
fn files_a_user_puts_into_a_run_folder_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    std::fs::write(dir.join("x.ron"), quick("keep", 0.2, "0")).unwrap();
    ok_in(dir, &["run", "x.ron", "--out", "u"]);
    let run = dir.join("u/keep/base.seed=0");
    std::fs::write(run.join("NOTES.md"), "x\n").unwrap();
    // Resumed after an interruption.
    interrupt(&run);
    let out = ok_in(dir, &["run", "x.ron", "--out", "u"]);
    assert!(out.contains("left alone") && out.contains("NOTES.md"), "{out}");
    // Replaced with --overwrite after a change of settings.
    std::fs::write(dir.join("x.ron"), quick("keep", 0.5, "0")).unwrap();
    ok_in(dir, &["run", "x.ron", "--out", "u", "--overwrite"]);
    assert_eq!(std::fs::read_to_string(run.join("NOTES.md")).unwrap(), "x\n");
    assert!(RunFolder::at(&run).is_finished());
}

/// Item 4: `rxalign data synth --out DIR` replaced an existing dataset
/// without asking.
#[test]
fn data_synth_refuses_a_non_empty_folder_without_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let synth = |seed: &str, extra: &[&str]| {
        let mut args = vec!["data", "synth", "--patients", "20", "--seed", seed, "--out", "d"];
        args.extend_from_slice(extra);
        rxalign_in(dir, &args)
    };
    assert!(synth("1", &[]).status.success());
    let before = std::fs::read(dir.join("d/visits.jsonl")).unwrap();
    let out = synth("2", &[]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("not empty") && e.contains("--overwrite"), "{e}");
    assert_eq!(std::fs::read(dir.join("d/visits.jsonl")).unwrap(), before);
    assert!(synth("2", &["--overwrite"]).status.success());
    assert_ne!(std::fs::read(dir.join("d/visits.jsonl")).unwrap(), before);
    // An empty folder is fine.
    std::fs::create_dir(dir.join("e")).unwrap();
    ok_in(dir, &["data", "synth", "--patients", "20", "--out", "e"]);
}

/// Writes `text` as `x.ron` in `dir` and returns `rxalign plan`'s stderr,
/// which must be a failure.
fn plan_fails(dir: &Path, text: &str) -> String {
    std::fs::write(dir.join("x.ron"), text).unwrap();
    fails_in(dir, &["plan", "x.ron"])
}

/// Item 5: two stages recording the same method (two `sft` stages without
/// `name`) were accepted, and the second overwrote the first's predictions
/// and summary row.
#[test]
fn two_stages_of_one_method_are_refused_at_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let e = plan_fails(
        tmp.path(),
        r#"(
    schema_version: 1,
    name: "twice",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "sft", epochs: 1),
        (kind: "sft", epochs: 2),
    ],
)"#,
    );
    assert!(
        e.contains("x.ron:8:") && e.contains("records method `sft`, as stages[0] does"),
        "{e}"
    );
    // Named apart, they plan.
    std::fs::write(
        tmp.path().join("y.ron"),
        r#"(
    schema_version: 1,
    name: "twice",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "sft", epochs: 1), (kind: "sft", epochs: 2, name: "sft_long")],
)"#,
    )
    .unwrap();
    ok_in(tmp.path(), &["plan", "y.ron"]);
}

/// Says whether `stderr` has a line at `line` of `x.ron` that says `needle`.
fn says_at(stderr: &str, line: usize, needle: &str) {
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&format!("x.ron:{line}:")) && l.contains(needle)),
        "line {line} should say `{needle}`:\n{stderr}"
    );
}

/// Item 8: problems found only once a run had started (some after the
/// classifier trained), without file and line, are refused by `plan`.
#[test]
fn late_checks_are_made_by_plan_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let e = plan_fails(
        tmp.path(),
        r#"(
    schema_version: 1,
    name: "late",
    data: (kind: "synthetic", patients: 60, noise: 2),
    notes: (tokenizer: "missing-tok.json"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "references"),
        (kind: "classifier", cross_fit: 1000),
        (kind: "start_from", method: "clasifier"),
        (kind: "baselines", methods: ["cooccurence"]),
    ],
)"#,
    );
    says_at(&e, 4, "noise");
    says_at(&e, 5, "missing-tok.json");
    says_at(&e, 9, "cross_fit");
    says_at(&e, 10, "reads method `clasifier`");
    says_at(&e, 11, "unknown baseline `cooccurence`");
    let e = plan_fails(
        tmp.path(),
        r#"(
    schema_version: 1,
    name: "late",
    data: (kind: "synthetic", patients: 60, visits_min: 5, visits_max: 2),
    notes: (vocab_size: 0),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [],
)"#,
    );
    says_at(&e, 4, "visits_min");
    says_at(&e, 5, "vocab_size");
    says_at(&e, 7, "stages: the list is empty");
}

/// Item 6: an impossible size (a 287.6 GB allocation) aborted the process
/// with code 134, taking the grid's other runs with it, on every rerun.
#[test]
fn an_impossible_size_is_refused_at_plan_instead_of_aborting() {
    let tmp = tempfile::tempdir().unwrap();
    let e = plan_fails(
        tmp.path(),
        r#"(
    schema_version: 1,
    name: "huge",
    data: (kind: "synthetic", patients: 60),
    policy: (kind: "set_encoder", hidden: 32),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "classifier", hidden: 100000000), (kind: "sft", epochs: 1)],
    ablations: (grid: {"policy.hidden": [100000000, 32]}),
)"#,
    );
    says_at(&e, 5, "hidden");
    says_at(&e, 5, "more than this machine's");
    says_at(&e, 7, "classifier");
    // `run` refuses before anything starts: no abort, no run folder.
    let out = rxalign_in(tmp.path(), &["run", "x.ron", "--out", "runs"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!tmp.path().join("runs/huge").exists());
}

/// Item 10: messages that did not say what was wrong, or where.
#[test]
fn experiment_file_mistakes_are_named_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let head = r#"(
    schema_version: 1,
    name: "plain",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
"#;
    // NaN and inf read as "invalid type: null".
    for bad in ["NaN", "inf"] {
        let e = plan_fails(
            tmp.path(),
            &format!("{head}    stages: [(kind: \"sft\", lr: {bad})],\n)"),
        );
        says_at(&e, 6, "field `lr` of `sft`");
        assert!(e.contains("not a finite number") && !e.contains("null"), "{e}");
    }
    // `seed: -1` named no field.
    let e = plan_fails(
        tmp.path(),
        &format!("{head}    seed: -1,\n    stages: [(kind: \"references\")],\n)"),
    );
    says_at(&e, 6, "setting `seed`");
    // An empty file named an internal type.
    for empty in ["", "  \n", "// nothing but a comment\n"] {
        let e = plan_fails(tmp.path(), empty);
        assert!(
            e.contains("x.ron:1:1") && e.contains("holds no experiment") && !e.contains("Probe"),
            "{e}"
        );
    }
}

/// Item 10: dataset folder mistakes blamed on the wrong file, or hidden.
#[test]
fn dataset_mistakes_name_their_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok_in(dir, &["data", "synth", "--patients", "20", "--out", "d"]);
    let drugs = std::fs::read_to_string(dir.join("d/drugs.csv")).unwrap();
    let visits = std::fs::read_to_string(dir.join("d/visits.jsonl")).unwrap();
    // An unterminated quote in drugs.csv was blamed on visits.jsonl.
    let mut lines: Vec<String> = drugs.lines().map(String::from).collect();
    lines[2] = lines[2].replacen(',', ",\"", 1);
    std::fs::write(dir.join("d/drugs.csv"), lines.join("\n") + "\n").unwrap();
    let e = fails_in(dir, &["data", "stats", "d"]);
    assert!(
        e.contains("drugs.csv:3") && e.contains("quote") && !e.contains("visits.jsonl"),
        "{e}"
    );
    std::fs::write(dir.join("d/drugs.csv"), &drugs).unwrap();
    // A drug listed twice in a visit was silently de-duplicated.
    let first: serde_json::Value = serde_json::from_str(visits.lines().next().unwrap()).unwrap();
    let mut doubled = first.clone();
    let drug = first["drugs"][0].clone();
    doubled["drugs"].as_array_mut().unwrap().push(drug.clone());
    let rest: Vec<&str> = visits.lines().skip(1).collect();
    std::fs::write(
        dir.join("d/visits.jsonl"),
        format!("{}\n{}\n", doubled, rest.join("\n")),
    )
    .unwrap();
    let e = fails_in(dir, &["data", "stats", "d"]);
    assert!(
        e.contains("visits.jsonl:1") && e.contains(&format!("{} is listed twice", drug).replace('"', "`")),
        "{e}"
    );
}

/// A finished quick run in `dir/runs/st`, for the `status` checks.
fn finished_quick(dir: &Path) -> PathBuf {
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    std::fs::write(dir.join("x.ron"), quick("st", 0.2, "0")).unwrap();
    ok_in(dir, &["run", "x.ron", "--out", "runs"]);
    dir.join("runs/st/base.seed=0")
}

/// Item 10: `status` showed `running` for a writer on another machine
/// without a word, and hid a damaged `summary.json`.
#[test]
fn status_says_what_it_cannot_tell_and_what_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = finished_quick(dir);
    let folder = RunFolder::at(&run);
    let good = folder.read_record().unwrap();
    // Another machine's writer.
    let mut record = good.clone();
    record.status = RunStatus::Running;
    record.writer = Some(rxalign_core::run::Writer {
        host: "node-elsewhere".into(),
        pid: 4242,
        started: None,
    });
    folder.write_record(&record).unwrap();
    let out = ok_in(dir, &["status", "runs"]);
    assert!(
        out.contains("node-elsewhere") && out.contains("cannot be told from this machine"),
        "{out}"
    );
    // A damaged summary.
    folder.write_record(&good).unwrap();
    std::fs::write(
        folder.path(rxalign_core::run::SUMMARY),
        "{\"format\": \"1.1\", \"meth",
    )
    .unwrap();
    let out = ok_in(dir, &["status", "runs"]);
    assert!(
        out.contains("unreadable") && out.contains("summary.json"),
        "{out}"
    );
}

/// Item 10: when every run failed, `run` printed an empty table of final
/// metrics before its error.
#[test]
fn no_table_when_no_run_has_results() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("x.ron"),
        r#"(
    schema_version: 1,
    name: "allfail",
    data: (kind: "folder", path: "no-such-dataset"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["most_frequent"])],
)"#,
    )
    .unwrap();
    let out = rxalign_in(tmp.path(), &["run", "x.ron", "--out", "runs"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("no-such-dataset"), "{all}");
    assert!(!all.contains("final test metrics"), "{all}");
}

/// Item 11: a dataset without `ddi.csv` reported both DDI rates as 0.0000
/// for every method, as if every list were safe.
#[test]
fn ddi_rates_are_na_with_the_reason_without_a_ddi_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok_in(dir, &["data", "synth", "--patients", "60", "--out", "d"]);
    std::fs::remove_file(dir.join("d/ddi.csv")).unwrap();
    std::fs::write(
        dir.join("x.ron"),
        r#"(
    schema_version: 1,
    name: "noddi",
    data: (kind: "folder", path: "d"),
    notes: (tokenizer: "none"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["most_frequent"])],
)"#,
    )
    .unwrap();
    let out = ok_in(dir, &["run", "x.ron", "--out", "runs"]);
    assert!(out.contains("no DDI graph"), "{out}");
    let summary = RunFolder::at(dir.join("runs/noddi/base.seed=0"))
        .read_summary()
        .unwrap();
    assert_eq!(summary.metric("most_frequent", "ddi_rate"), None);
    assert_eq!(summary.metric("most_frequent", "ddi_rate_pooled"), None);
    assert!(summary.metric("most_frequent", "jaccard").is_some());
    let all = text(&rxalign_in(dir, &["compare", "runs/noddi"]));
    let row = all.lines().find(|l| l.contains("most_frequent")).unwrap();
    assert!(row.matches("n/a").count() >= 2, "{all}");
    assert!(all.contains("no DDI graph") && all.contains("ddi.csv"), "{all}");
    let status = ok_in(dir, &["status", "runs"]);
    assert!(
        status.contains("n/a") && status.contains("no DDI graph"),
        "{status}"
    );
}

/// Kill anywhere: `kill -9` in every stage that checkpoints (SFT, GRPO,
/// step-wise GRPO), at several steps, each time in the folder the previous
/// kill left; the run that finally completes writes the same
/// `summary.json`, byte for byte, as a run never interrupted.
#[test]
fn kill_9_in_every_checkpointing_stage_then_resume_gives_the_same_summary() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("k.ron"),
        r#"(
    schema_version: 1,
    name: "kill",
    data: (kind: "synthetic", patients: 120),
    notes: (tokenizer: "none"),
    policy: (kind: "set_encoder", hidden: 16, budget: 8),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.5)],
    stages: [
        (kind: "baselines", methods: ["most_frequent"]),
        (kind: "start_from", method: "most_frequent"),
        (kind: "sft", epochs: 8),
        (kind: "grpo", iterations: 8, group: 4),
        (kind: "step_grpo", iterations: 8, group: 4, step_weight: 0.5),
    ],
    eval: (splits: ["test"], trajectories: 2),
)"#,
    )
    .unwrap();
    ok_in(dir, &["run", "k.ron", "--out", "fresh"]);
    let reference = std::fs::read(dir.join("fresh/kill/base.seed=0/summary.json")).unwrap();
    let run = RunFolder::at(dir.join("killed/kill/base.seed=0"));
    let mut kills = 0;
    for (stage, step) in [(2, 1), (2, 5), (3, 1), (3, 5), (4, 1), (4, 6)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
            .args(["run", "k.ron", "--out", "killed"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let killed = loop {
            let at = run.read_record().ok().and_then(|r| r.current);
            if at.is_some_and(|c| c.index > stage || (c.index == stage && c.step >= step)) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(Instant::now() < deadline, "stage {stage} step {step} not reached");
            std::thread::sleep(Duration::from_millis(5));
        };
        kills += usize::from(killed);
        if !killed {
            break;
        }
        let record = run.read_record().unwrap();
        assert_ne!(record.status, RunStatus::Finished, "killed mid-run");
    }
    assert!(kills >= 3, "only {kills} kill(s) landed inside the run");
    let out = ok_in(dir, &["run", "k.ron", "--out", "killed"]);
    assert!(
        out.contains("resuming") || out.contains("already finished"),
        "{out}"
    );
    let resumed = std::fs::read(run.path(rxalign_core::run::SUMMARY)).unwrap();
    assert!(
        resumed == reference,
        "the resumed summary differs from the uninterrupted run's:\n{}\n---\n{}",
        String::from_utf8_lossy(&resumed),
        String::from_utf8_lossy(&reference)
    );
}

/// Runs `rxalign run FILE --out killed` in `dir` once per name in `waits`,
/// each time killing it with SIGKILL as soon as it has written that
/// checkpoint (of run `kill/base.seed=0`), in the folder the previous kill
/// left; then runs it to the end and checks that its `summary.json` is
/// byte for byte an uninterrupted run's (`fresh`), and that its records of
/// `method` are the same but for their times. Returns how many kills landed
/// inside the run.
fn kill_at_checkpoints_then_resume(dir: &Path, file: &str, waits: &[&str], method: &str) -> usize {
    use std::process::Stdio;
    use std::time::{Duration, Instant, SystemTime};
    ok_in(dir, &["run", file, "--out", "fresh"]);
    let fresh = RunFolder::at(dir.join("fresh/kill/base.seed=0"));
    let run = RunFolder::at(dir.join("killed/kill/base.seed=0"));
    let mut kills = 0;
    for wait in waits {
        let started = SystemTime::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rxalign"))
            .args(["run", file, "--out", "killed"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let checkpoint = run.path("checkpoints").join(wait);
        let deadline = Instant::now() + Duration::from_secs(300);
        let killed = loop {
            let written = std::fs::metadata(&checkpoint)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= started);
            if written {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(Instant::now() < deadline, "{wait} not written");
            std::thread::sleep(Duration::from_millis(2));
        };
        if !killed {
            break;
        }
        kills += 1;
        assert_ne!(
            run.read_record().unwrap().status,
            RunStatus::Finished,
            "killed mid-run"
        );
    }
    let out = ok_in(dir, &["run", file, "--out", "killed"]);
    assert!(
        out.contains("resuming") || out.contains("already finished"),
        "{out}"
    );
    let resumed = std::fs::read(run.path(rxalign_core::run::SUMMARY)).unwrap();
    let reference = std::fs::read(fresh.path(rxalign_core::run::SUMMARY)).unwrap();
    assert!(
        resumed == reference,
        "the resumed summary differs from the uninterrupted run's:\n{}\n---\n{}",
        String::from_utf8_lossy(&resumed),
        String::from_utf8_lossy(&reference)
    );
    let records = |folder: &RunFolder| -> Vec<serde_json::Value> {
        std::fs::read_to_string(folder.path("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["method"] == method)
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("time");
                r
            })
            .collect()
    };
    let (again, first) = (records(&run), records(&fresh));
    assert!(!first.is_empty());
    assert_eq!(again, first, "the records of {method}");
    kills
}

/// Issue #23: the classifier trained in a loop of its own, with no
/// checkpoints; now every epoch of it and of each cross-fitted fold's
/// classifier is checkpointed, and `kill -9` in the classifier, then in each
/// fold, then the same command, gives the uninterrupted run's summary (the
/// folds' lists are SFT's starts, so they count in it).
#[test]
fn kill_9_in_the_classifier_and_its_folds_then_resume_gives_the_same_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("k.ron"),
        r#"(
    schema_version: 1,
    name: "kill",
    data: (kind: "synthetic", patients: 120),
    notes: (tokenizer: "none"),
    policy: (kind: "set_encoder", hidden: 16, budget: 8),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "baselines", methods: ["most_frequent"]),
        (kind: "classifier", hidden: 32, epochs: 12, lr: 0.01, dropout: 0.3, cross_fit: 2),
        (kind: "start_from", method: "classifier"),
        (kind: "sft", epochs: 1, starts: "run"),
    ],
    eval: (splits: ["test"], trajectories: 1),
)"#,
    )
    .unwrap();
    let kills = kill_at_checkpoints_then_resume(
        dir,
        "k.ron",
        &[
            "01-classifier.ckpt",
            "01-classifier.ckpt",
            "01-classifier.fold-1.ckpt",
            "01-classifier.fold-2.ckpt",
        ],
        "classifier",
    );
    assert!(kills >= 3, "only {kills} kill(s) landed inside the run");
}

/// Issue #23: an interrupted LAMO stage trained again from the start; now
/// its adapters (and with `select: "validation"` the kept ones) are
/// checkpointed after every epoch, and `kill -9` in it, twice, then the same
/// command gives the uninterrupted run's summary.
#[test]
fn kill_9_in_lamo_then_resume_gives_the_same_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("question.txt"),
        "{age} {sex}; {diagnoses}. Give {drug}?\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("k.ron"),
        r#"(
    schema_version: 1,
    name: "kill",
    data: (kind: "synthetic", patients: 8),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "baselines", methods: ["most_frequent"]),
        (
            kind: "lamo",
            model: (kind: "tiny", layers: 1, heads: 2, kv_heads: 1, head_dim: 8, vocab_size: 400),
            prompt: "question.txt",
            groups: (kind: "frequency", k: 3),
            lora: (rank: 4, alpha: 8.0, targets: ["q_proj", "v_proj"]),
            epochs: 4,
            batch_size: 128,
            lr: 0.05,
            negatives_per_positive: 2.0,
            select: "validation",
        ),
    ],
    eval: (trajectories: 1),
)"#,
    )
    .unwrap();
    let kills = kill_at_checkpoints_then_resume(
        dir,
        "k.ron",
        &["01-lamo.ckpt", "01-lamo.ckpt", "01-lamo.ckpt"],
        "lamo",
    );
    assert!(kills >= 2, "only {kills} kill(s) landed inside the run");
}

/// Item 1: which settings count as inputs: every existing path a setting
/// names (the tokenizer, a start list's predictions), not the dataset (its
/// own fingerprint covers it), nor names of methods that happen to be
/// folders.
#[test]
fn the_inputs_of_a_run_are_the_paths_its_settings_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok_in(dir, &["data", "synth", "--patients", "20", "--out", "d"]);
    std::fs::copy(minilm(), dir.join("tok.json")).unwrap();
    let at = |name: &str| dir.join(name).display().to_string();
    let text = format!(
        r#"(
    schema_version: 1,
    name: "inputs",
    data: (kind: "folder", path: "{}"),
    init_list: (kind: "predictions", path: "{}"),
    notes: (tokenizer: "{}"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["most_frequent"]), (kind: "start_from", method: "most_frequent")],
)"#,
        at("d"),
        at("d/rule_predictions.jsonl"),
        at("tok.json")
    );
    std::fs::write(dir.join("x.ron"), text).unwrap();
    let (_, plans) =
        rxalign_experiment::load(&dir.join("x.ron"), &rxalign_experiment::Plugins::builtin()).unwrap();
    let named = rxalign_experiment::runner::named_inputs(&plans[0].plan.file).unwrap();
    let keys: Vec<&str> = named.keys().map(String::as_str).collect();
    assert_eq!(keys, ["init_list.path", "notes.tokenizer"]);
    assert_eq!(named["notes.tokenizer"].path, at("tok.json"));
}

/// Item 8, second pass: a misspelt method got no suggestion, and a stage
/// that is there but invalid was reported again by the next stage as
/// missing (`start_from` after an invalid `classifier`, `grpo` after an
/// invalid `sft`).
#[test]
fn a_misspelling_is_told_its_name_and_an_invalid_stage_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    // The file's head, then one stage a line from line 7.
    let head =
        "(\n    schema_version: 1,\n    name: \"once\",\n    data: (kind: \"synthetic\", patients: 60),\n";
    let stages = [
        r#"(kind: "classifier", cross_fit: 1000)"#,
        r#"(kind: "start_from", method: "classifier")"#,
        r#"(kind: "start_from", method: "clasifier")"#,
        r#"(kind: "baselines", methods: ["cooccurence"])"#,
        r#"(kind: "sft", epochs: 1, lr: -1.0)"#,
        r#"(kind: "grpo", iterations: 1, group: 2)"#,
    ];
    let e = plan_fails(
        tmp.path(),
        &format!(
            "{head}    reward: [(kind: \"jaccard\", weight: 1.0)],\n    stages: [\n        {},\n    ],\n)",
            stages.join(",\n        ")
        ),
    );
    says_at(&e, 7, "cross_fit");
    says_at(&e, 9, "did you mean `classifier`?");
    says_at(&e, 10, "did you mean `cooccurrence`?");
    says_at(&e, 11, "lr");
    // Each invalid stage once; the stages after them are not blamed.
    assert!(!e.contains("x.ron:8:") && !e.contains("x.ron:12:"), "{e}");
    assert_eq!(e.matches("x.ron:").count(), 4, "{e}");
    // A misspelt kind and field are told theirs too.
    let e = plan_fails(
        tmp.path(),
        &format!(
            "{head}    reward: [(kind: \"jacard\", weight: 1.0)],\n    stages: [(kind: \"sft\", epoch: 1)],\n)"
        ),
    );
    assert!(
        e.contains("did you mean `jaccard`?") || e.contains("did you mean `epochs`?"),
        "{e}"
    );
}

/// Item 3, second pass: every command that writes a folder or a file
/// refuses to write over what is there without `--overwrite` (`plot --out`
/// replaced figures in a folder of the user's, `baseline --out` replaced a
/// predictions file).
#[test]
fn plot_and_baseline_write_over_nothing_without_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    finished_quick(dir);
    std::fs::create_dir(dir.join("figs")).unwrap();
    std::fs::write(dir.join("figs/learning_curves.png"), "mine").unwrap();
    let e = fails_in(dir, &["plot", "runs/st", "--out", "figs"]);
    assert!(e.contains("not empty") && e.contains("--overwrite"), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.join("figs/learning_curves.png")).unwrap(),
        "mine"
    );
    ok_in(dir, &["plot", "runs/st", "--out", "new-figs"]);
    ok_in(dir, &["plot", "runs/st", "--out", "figs", "--overwrite"]);
    assert_ne!(
        std::fs::read(dir.join("figs/learning_curves.png")).unwrap(),
        b"mine"
    );

    ok_in(dir, &["data", "synth", "--patients", "20", "--out", "d"]);
    std::fs::write(dir.join("p.jsonl"), "mine\n").unwrap();
    let args = ["baseline", "most_frequent", "--data", "d", "--out", "p.jsonl"];
    let e = fails_in(dir, &args);
    assert!(e.contains("p.jsonl") && e.contains("--overwrite"), "{e}");
    assert_eq!(std::fs::read_to_string(dir.join("p.jsonl")).unwrap(), "mine\n");
    let mut again = args.to_vec();
    again.push("--overwrite");
    ok_in(dir, &again);

    // The MIMIC imports refuse a folder that is not empty before reading
    // any table (the guarantee in docs/reliability.md).
    for command in ["mimic3", "mimic4"] {
        let args = [
            "data",
            command,
            "--root",
            "no-tables",
            "--ndc-map",
            "no-map.csv",
            "--out",
            "d",
        ];
        let e = fails_in(dir, &args);
        assert!(
            e.contains("not empty") && e.contains("--overwrite"),
            "{command}: {e}"
        );
    }
    assert!(dir.join("d/visits.jsonl").exists());
}
