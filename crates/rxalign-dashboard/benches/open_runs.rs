//! Opening a runs folder of 200 runs and drawing the runs panel's first
//! frame (the issue's target: within a second on a 2-core machine), and
//! the curves panel on a run with 100,000 logged points (decimated).
//!
//! The runs are copies of one small real run (made by the experiment
//! runner in the bench), each with its own name, group and seed.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use egui_kittest::Harness;
use rxalign_core::run::{ExperimentFolder, MetricsRecord, RunFolder, append_jsonl};
use rxalign_dashboard::{Dashboard, RunStore, Tab, egui};
use rxalign_experiment::progress::Silent;
use rxalign_experiment::runner::{RunOptions, run_all};
use rxalign_experiment::{Plugins, load};

const ONE: &str = r#"(
    schema_version: 1,
    name: "one",
    data: (kind: "synthetic", patients: 120),
    policy: (kind: "set_encoder", hidden: 16, budget: 12),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [(kind: "classifier", hidden: 16, epochs: 3), (kind: "sft", epochs: 2)],
    eval: (trajectories: 2),
)"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "run.lock" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("one.ron");
    std::fs::write(&file, ONE).unwrap();
    let plugins = Plugins::builtin();
    let (_, plans) = load(&file, &plugins).unwrap();
    let made = tmp.path().join("made");
    run_all(&plans, &plugins, &made, &RunOptions::default(), &Silent);
    let source = made.join(&plans[0].plan.name);
    let runs = tmp.path().join("runs");
    let exp = ExperimentFolder::at(runs.join("many"));
    for i in 0..200 {
        let name = format!("v{}.seed={}", i / 5, i % 5);
        copy_dir(&source, &exp.root().join(&name));
        let folder = exp.run(&name);
        let mut record = folder.read_record().unwrap();
        record.experiment = "many".into();
        record.run = name;
        record.group = format!("v{}", i / 5);
        record.seed = (i % 5) as u64;
        folder.write_record(&record).unwrap();
    }
    c.bench_function("open 200 runs and draw the runs panel", |b| {
        b.iter(|| {
            let mut d = Dashboard::open(runs.clone());
            d.tab = Tab::Runs;
            let mut h = Harness::builder()
                .with_size(egui::vec2(1400.0, 900.0))
                .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
            h.step();
            assert_eq!(h.state().store.all_runs().count(), 200);
        })
    });

    // As `rxalign dashboard` opens it: watching the folder (an inotify
    // watch on each of its directories) besides reading it.
    c.bench_function("open 200 runs watched and draw the runs panel", |b| {
        b.iter(|| {
            let mut d = Dashboard::with_store(RunStore::open_watched(runs.clone(), None));
            d.tab = Tab::Runs;
            let mut h = Harness::builder()
                .with_size(egui::vec2(1400.0, 900.0))
                .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
            h.step();
            assert_eq!(h.state().store.all_runs().count(), 200);
        })
    });

    // One run with 100,000 logged values of a metric.
    let long = tmp.path().join("long");
    copy_dir(&source, &long.join("big").join("r"));
    let folder = RunFolder::at(long.join("big").join("r"));
    let records: Vec<MetricsRecord> = (0..100_000u64)
        .map(|s| {
            let v = 0.5 + 0.4 * ((s as f64) / 5000.0).sin();
            MetricsRecord::new(s, "val", "sft", [("jaccard".to_string(), Some(v))].into())
        })
        .collect();
    append_jsonl(&folder.path(rxalign_core::run::METRICS), &records).unwrap();
    let store = RunStore::open(long.clone());
    let mut d = Dashboard::with_store(store);
    d.tab = Tab::Curves;
    d.curves.smoothing = 0.6;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
    h.step();
    c.bench_function("a frame of the curves panel with 100,000 points", |b| {
        b.iter(|| h.step())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
