//! `rxalign compare --format json` and `rxalign status --json`: the output
//! reads back into the documented types (`rxalign_cli::report`), its
//! numbers are the runs' own, and it validates against the published JSON
//! Schemas (`docs/*.schema.json`) with the reference validator of the
//! Python `jsonschema` package:
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install jsonschema
//! RXALIGN_PYTHON=.venv/bin/python cargo test --test json_output -- --include-ignored
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::root;
use rxalign_cli::report::{CompareReport, StatusReport};

/// The standard output of `rxalign ARGS` run in `cwd`, which must succeed.
fn ok(args: &[&str], cwd: &Path) -> String {
    String::from_utf8(common::ok_in(cwd, args).stdout).unwrap()
}

/// Two variants over three seeds of the non-learned baselines (a second or
/// two); the JSON outputs of `compare` and `status`, also written to `dir`.
fn outputs(dir: &Path) -> (String, String) {
    std::fs::write(
        dir.join("json.ron"),
        r#"(
    schema_version: 1,
    name: "json",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["most_frequent", "cooccurrence"])],
    ablations: (grid: {"data.patients": [60, 90], "seed": [1, 2, 3]}),
)"#,
    )
    .unwrap();
    ok(&["run", "json.ron", "--out", "runs"], dir);
    let compare = ok(&["compare", "runs/json", "--format", "json"], dir);
    let status = ok(&["status", "runs", "--json"], dir);
    std::fs::write(dir.join("compare.json"), &compare).unwrap();
    std::fs::write(dir.join("status.json"), &status).unwrap();
    (compare, status)
}

#[test]
fn compare_json_has_each_metric_over_seeds_per_group_and_method() {
    let tmp = tempfile::tempdir().unwrap();
    let (compare, status) = outputs(tmp.path());
    let report: CompareReport = serde_json::from_str(&compare).unwrap();
    assert_eq!(report.format_version, rxalign_cli::report::COMPARE_FORMAT);
    assert_eq!((report.split.as_str(), report.finished_runs), ("test", 6));
    assert_eq!(report.groups.len(), 2, "{compare}");
    let runs: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("runs/json"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    for group in &report.groups {
        assert_eq!(group.seeds, [1, 2, 3]);
        let methods: Vec<&str> = group.methods.iter().map(|m| m.method.as_str()).collect();
        assert!(
            methods.contains(&"most_frequent") && methods.contains(&"cooccurrence"),
            "{methods:?}"
        );
        // Each cell is the mean and sample standard deviation of the
        // group's runs' own values.
        let m = group
            .methods
            .iter()
            .find(|m| m.method == "most_frequent")
            .unwrap();
        let j = &m.metrics["jaccard"];
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|run| {
                let record: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
                (record["group"] == group.group.as_str()).then(|| {
                    let s: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                            .unwrap();
                    s["methods"]["most_frequent"]["metrics"]["jaccard"]
                        .as_f64()
                        .unwrap()
                })
            })
            .collect();
        assert_eq!(values.len(), 3);
        let mean = values.iter().sum::<f64>() / 3.0;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert_eq!((j.n, j.seeds.as_slice()), (3, [1, 2, 3].as_slice()));
        assert!(
            (j.mean - mean).abs() < 1e-12 && (j.std.unwrap() - std).abs() < 1e-12,
            "{j:?} {values:?}"
        );
        // Every metric of the runs' summaries is there, each over the three
        // seeds.
        assert!(
            m.metrics.len() >= 8 && m.metrics.values().all(|c| c.n == 3),
            "{:?}",
            m.metrics
        );
    }
    assert!(
        report.definitions["jaccard"].contains('|'),
        "{:?}",
        report.definitions
    );
    let status: StatusReport = serde_json::from_str(&status).unwrap();
    let exp = &status.experiments[0];
    assert_eq!(
        (exp.name.as_str(), exp.counts.get("finished")),
        ("json", Some(&6))
    );
    assert!(
        exp.file.as_deref().is_some_and(|f| f.ends_with("json.ron")),
        "{exp:?}"
    );
    for r in &exp.runs {
        assert_eq!(r.last_method.as_deref(), Some("cooccurrence"), "{r:?}");
        assert!(
            r.elapsed_seconds.is_some() && r.test_metrics.contains_key("ddi_rate"),
            "{r:?}"
        );
    }
}

#[test]
#[ignore = "needs the `jsonschema` Python package (RXALIGN_PYTHON); .ci/run runs it"]
fn the_outputs_validate_against_the_published_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    outputs(tmp.path());
    let python = std::env::var("RXALIGN_PYTHON").unwrap_or_else(|_| "python3".into());
    for (output, schema) in [
        ("compare.json", "docs/compare.schema.json"),
        ("status.json", "docs/status.schema.json"),
    ] {
        let out = Command::new(&python)
            .args([
                "-c",
                "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[2]))\n\
                 jsonschema.validators.validator_for(schema).check_schema(schema)\n\
                 jsonschema.validate(json.load(open(sys.argv[1])), schema)\n\
                 print('valid')",
            ])
            .arg(tmp.path().join(output))
            .arg(root().join(schema))
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e}"));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "valid",
            "{output} against {schema}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
