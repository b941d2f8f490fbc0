//! Experiment files: every shipped file parses and expands; errors point at
//! the right line and column; a small ablation runs end to end through the
//! binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rxalign_experiment::{Plugins, load};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rxalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

#[test]
fn every_shipped_experiment_file_parses_and_expands() {
    let dir = root().join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.trim_start().starts_with("//"),
            "{}: starts with a comment saying what it shows",
            file.display()
        );
        assert!(
            text.contains("Takes about") || text.contains("Took "),
            "{}: says how long it takes (or took, measured)",
            file.display()
        );
        let plugins = Plugins::builtin();
        // A file for a GPU (the real-data language-model files name
        // `cuda:0`) is checked on CPU where this build has no CUDA (which
        // refuses the device, rightly); every other setting as written.
        let gpu = "device: \"cuda:0\"";
        let tmp = tempfile::tempdir().unwrap();
        let file = if !cfg!(feature = "cuda") && text.contains(gpu) {
            let copy = tmp.path().join(file.file_name().unwrap());
            std::fs::write(&copy, text.replace(gpu, "device: \"cpu\"")).unwrap();
            copy
        } else {
            file
        };
        let (exp, plans) = load(&file, &plugins).unwrap_or_else(|e| panic!("{e}"));
        // Resolved into typed plans: what `rxalign run` checks before any
        // run starts, and runs.
        assert!(!plans.is_empty(), "{}", exp.file.name);
    }
}

/// Writes `text` as an experiment file and returns the load error.
fn error_of(text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.ron");
    std::fs::write(&path, text).unwrap();
    load(&path, &Plugins::builtin())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

const GOOD: &str = r#"(
    schema_version: 1,
    name: "t",
    data: (kind: "synthetic", patients: 30),
    reward: [
        (kind: "jaccard", weight: 1.0),
        (kind: "ddi_rate", weight: 0.2),
    ],
    stages: [(kind: "baselines")],
    ablations: (
        grid: {"reward[1].weight": [0.0, 0.5], "seed": [1, 2]},
    ),
)"#;

#[test]
fn the_reference_file_is_good() {
    assert_eq!(error_of(GOOD), "");
}

#[test]
fn a_misspelt_field_points_at_its_line_and_column() {
    let e = error_of(&GOOD.replace("name: \"t\"", "nmae: \"t\""));
    // Positions are where the parser stands: just after the field name.
    assert!(
        e.contains("x.ron:3:9") && e.contains("nmae") && e.contains("`name`"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("patients: 30", "patient: 30"));
    assert!(
        e.contains("x.ron:4:") && e.contains("unknown field `patient` of dataset source `synthetic`"),
        "{e}"
    );
    assert!(e.contains("known fields: preset, patients, seed"), "{e}");
    let e = error_of(&GOOD.replace(
        "(kind: \"ddi_rate\", weight: 0.2)",
        "(kind: \"ddi_rate\", wieght: 0.2)",
    ));
    assert!(e.contains("x.ron:7:") && e.contains("`wieght`"), "{e}");
}

#[test]
fn an_unknown_kind_lists_the_known_ones() {
    let e = error_of(&GOOD.replace("kind: \"ddi_rate\"", "kind: \"ddi\""));
    assert!(
        e.contains("x.ron:7:") && e.contains("unknown reward term kind `ddi`"),
        "{e}"
    );
    assert!(
        e.contains("known kinds: jaccard, f1, precision, recall, ddi_rate"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("(kind: \"baselines\")", "(kind: \"gpro\")"));
    assert!(
        e.contains("x.ron:9:")
            && e.contains("unknown stage kind `gpro`; did you mean `grpo`?; known kinds: baselines, classifier, references, headroom, sft, grpo, step_grpo, start_from"),
        "{e}"
    );
}

#[test]
fn a_wrong_type_points_at_its_line() {
    let e = error_of(&GOOD.replace("patients: 30", "patients: \"thirty\""));
    assert!(
        e.contains("x.ron:4:") && e.contains("field `patients` of `synthetic`"),
        "{e}"
    );
    let e = error_of(&GOOD.replace(
        "(kind: \"jaccard\", weight: 1.0)",
        "(kind: \"jaccard\", weight: \"high\")",
    ));
    assert!(e.contains("x.ron:6:") && e.contains("`weight`"), "{e}");
    let e = error_of(&GOOD.replace(
        "schema_version: 1,\n    name: \"t\"",
        "schema_version: 1,\n    name: 4",
    ));
    assert!(e.contains("x.ron:3:"), "{e}");
}

#[test]
fn a_bad_ablation_path_points_at_the_path() {
    let e = error_of(&GOOD.replace("\"reward[1].weight\"", "\"reward[3].weight\""));
    assert!(
        e.contains("x.ron:11:16")
            && e.contains("ablation path `reward[3].weight`")
            && e.contains("has 2 elements"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("\"reward[1].weight\"", "\"stages[0].epochs\""));
    assert!(e.contains("x.ron:11:16") && e.contains("epochs"), "{e}");
    let e = error_of(&GOOD.replace("[0.0, 0.5]", "[\"a\", 0.5]"));
    assert!(e.contains("x.ron:11:16") && e.contains("weight"), "{e}");
}

/// Issue #24: the seed axis may name a seed set (`"dream"`: DREAM's five
/// seeds, in its order); an unknown name, or a name on another axis, is an
/// error at the axis's path naming the known sets; a split drawn by the run
/// seed refuses a split seed too.
#[test]
fn the_seed_axis_takes_the_dream_seed_set() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.ron");
    std::fs::write(&path, GOOD.replace("\"seed\": [1, 2]", "\"seed\": \"dream\"")).unwrap();
    let (_, plans) = load(&path, &Plugins::builtin()).unwrap();
    let seeds: Vec<u64> = plans
        .iter()
        .map(|t| &t.plan)
        .filter(|p| p.group == plans[0].plan.group)
        .map(|p| p.seed)
        .collect();
    assert_eq!(seeds, rxalign_core::DREAM_SEEDS.to_vec());
    let e = error_of(&GOOD.replace("\"seed\": [1, 2]", "\"seed\": \"dreams\""));
    assert!(
        e.contains("x.ron:11:") && e.contains("unknown seed set `dreams`; known: `dream`"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("[0.0, 0.5]", "\"dream\""));
    assert!(
        e.contains("x.ron:11:16") && e.contains("only the `seed` axis takes"),
        "{e}"
    );
    let e = error_of(&GOOD.replace(
        "stages: [",
        "split: (seed: 3, train: 0.66, val: 0.17, from_run_seed: true),\n    stages: [",
    ));
    assert!(e.contains("x.ron:9:") && e.contains("leave out one"), "{e}");
}

#[test]
fn newer_and_missing_schema_versions_are_refused() {
    let e = error_of(&GOOD.replace("schema_version: 1", "schema_version: 2"));
    assert!(
        e.contains("schema_version 2 is newer than this rxalign reads (1)"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("schema_version: 1,", ""));
    assert!(e.contains("missing `schema_version`"), "{e}");
}

fn ok(args: &[&str]) -> String {
    let out = rxalign(args);
    assert!(
        out.status.success(),
        "rxalign {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_small_ablation_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tiny.ron");
    std::fs::write(
        &file,
        r#"// A tiny ablation for the tests. Takes about a second.
(
    schema_version: 1,
    name: "tiny",
    data: (kind: "synthetic", patients: 120),
    policy: (kind: "set_encoder", hidden: 16, budget: 12),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [
        (kind: "references"),
        (kind: "baselines", methods: ["most_frequent", "cooccurrence"]),
        (kind: "classifier", hidden: 16, epochs: 3),
        (kind: "sft", epochs: 2),
        (kind: "start_from", method: "classifier"),
        (kind: "step_grpo", iterations: 2, visits: 4, group: 2),
    ],
    eval: (trajectories: 2),
    ablations: (
        variants: [
            (name: "noisy", set: {"data.noise": 0.2}),
            (name: "clean", set: {"data.noise": 0.0}),
        ],
        grid: {"seed": [1, 2]},
    ),
)"#,
    )
    .unwrap();
    let (f, out) = (file.to_str().unwrap(), tmp.path().join("runs"));
    let plan = ok(&["plan", f]);
    assert!(
        plan.contains("4 run(s)") && plan.contains("noisy.seed=2") && plan.contains("data.noise = 0.2"),
        "{plan}"
    );
    let first = ok(&["run", f, "--out", out.to_str().unwrap(), "--jobs", "2"]);
    assert_eq!(first.matches("finished ").count(), 4, "{first}");
    let dir = out.join("tiny");
    for run in ["noisy.seed=1", "noisy.seed=2", "clean.seed=1", "clean.seed=2"] {
        for file in [
            "resolved.ron",
            "metrics.jsonl",
            "trajectories.jsonl",
            "summary.json",
            "predictions/cooccurrence.jsonl",
        ] {
            assert!(dir.join(run).join(file).is_file(), "{run}/{file}");
        }
    }
    // The classifier logs each epoch on validation, then its final evaluation.
    let metrics = std::fs::read_to_string(dir.join("clean.seed=1/metrics.jsonl")).unwrap();
    let steps: Vec<(u64, String)> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["method"] == "classifier")
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["split"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "val".into()),
            (2, "val".into()),
            (3, "val".into()),
            (3, "test".into())
        ]
    );
    // SFT keeps the policy's own steps, each with its probability.
    let trajectories = std::fs::read_to_string(dir.join("clean.seed=1/trajectories.jsonl")).unwrap();
    let sft: Vec<serde_json::Value> = trajectories
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["method"] == "sft")
        .collect();
    // The first two test visits (`trajectories: 2`), then the visits where
    // SFT edited its start list, every one of them (as `summary.json` says).
    let codes = |t: &serde_json::Value, key: &str| -> std::collections::BTreeSet<String> {
        t[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    let edited = |t: &&serde_json::Value| codes(t, "start") != codes(t, "final_list");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("clean.seed=1/summary.json")).unwrap())
            .unwrap();
    let kept = &summary["methods"]["sft"]["trajectories"];
    assert!(sft.len() >= 2 && sft[2..].iter().all(|t| edited(&t)));
    assert_eq!(
        sft.iter().filter(edited).count() as u64,
        kept["edited"].as_u64().unwrap()
    );
    assert_eq!(kept["edited"], kept["edited_kept"]);
    // Step-wise GRPO started from the classifier's lists.
    let classifier_lists: std::collections::HashMap<String, Vec<String>> =
        std::fs::read_to_string(dir.join("clean.seed=1/predictions/classifier.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|r| {
                (
                    r["visit_id"].as_str().unwrap().to_string(),
                    serde_json::from_value(r["drugs"].clone()).unwrap(),
                )
            })
            .collect();
    for t in trajectories
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["method"] == "step_grpo")
    {
        let start: Vec<String> = serde_json::from_value(t["start"].clone()).unwrap();
        assert_eq!(
            Some(&start),
            classifier_lists.get(t["visit_id"].as_str().unwrap())
        );
    }
    for t in &sft {
        let steps = t["steps"].as_array().unwrap();
        assert!(!steps.is_empty() && steps.len() <= 12);
        assert!(
            steps
                .iter()
                .all(|s| s["probability"].as_f64().is_some_and(|p| p > 0.0 && p <= 1.0))
        );
    }
    let again = ok(&["run", f, "--out", out.to_str().unwrap(), "--only", "clean"]);
    assert_eq!(again.matches("already finished").count(), 2, "{again}");
    let text = ok(&["compare", dir.to_str().unwrap()]);
    assert!(
        text.contains("noisy") && text.contains("±") && text.contains("ceiling"),
        "{text}"
    );
    // Without noise the ceiling is exact.
    let clean_ceiling = text
        .lines()
        .find(|l| l.starts_with("clean") && l.contains("ceiling"))
        .unwrap();
    assert!(clean_ceiling.contains("1.0000 ± 0.0000"), "{clean_ceiling}");
    let md = ok(&["compare", dir.to_str().unwrap(), "--format", "markdown"]);
    assert!(md.starts_with("| group | method | seeds | jaccard"), "{md}");
    let figures = tmp.path().join("figures");
    let plot = ok(&["plot", dir.to_str().unwrap(), "--out", figures.to_str().unwrap()]);
    assert_eq!(plot.lines().count(), 10, "{plot}");
    for name in [
        "learning_curves",
        "safety_accuracy",
        "list_sizes",
        "reward_terms",
        "generalisation",
    ] {
        assert_not_blank_png(&figures.join(format!("{name}.png")));
        let svg = std::fs::read_to_string(figures.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}.svg"
        );
        assert!(
            svg.matches("<text").count() > 5
                && svg.matches("<circle").count()
                    + svg.matches("<polyline").count()
                    + svg.matches("<rect").count()
                    > 5,
            "{name}.svg draws something"
        );
    }
    let csv = ok(&["compare", dir.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(csv.lines().count(), 1 + 2 * 9, "{csv}");
    assert!(
        csv.lines().nth(2).unwrap().starts_with("clean,ceiling,2,1,0,"),
        "{csv}"
    );
}

#[test]
fn a_failed_run_leaves_the_others_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("mixed.ron");
    std::fs::write(
        &file,
        r#"(
    schema_version: 1,
    name: "mixed",
    data: (kind: "folder", path: "no/such/folder"),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines")],
    ablations: (variants: [
        (name: "good", set: {"data": (kind: "synthetic", patients: 40)}),
        (name: "bad", set: {}),
    ]),
)"#,
    )
    .unwrap();
    let out = rxalign(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FAILED bad.seed=0") && err.contains("1 of 2 run(s) failed"),
        "{err}"
    );
    assert!(Path::new(&tmp.path().join("mixed/good.seed=0/summary.json")).is_file());
}

/// A PNG that decodes, of the expected size, with more than a handful of
/// colours (axes, text and data, not a blank canvas).
fn assert_not_blank_png(path: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 640), "{}", path.display());
    let px = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let non_white = buf[..info.buffer_size()]
        .chunks(px)
        .filter(|c| c.iter().take(3).any(|&v| v < 200))
        .count();
    assert!(
        colours.len() > 20 && non_white > 2000,
        "{} looks blank: {} colours, {non_white} dark pixels",
        path.display(),
        colours.len()
    );
}
