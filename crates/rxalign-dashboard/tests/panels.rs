//! Each panel driven through egui_kittest (the accessibility tree, no GPU)
//! on run folders made by a small real experiment: two variants over two
//! seeds, one of them left planned, plus a failed copy and one of a newer
//! major format.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use rxalign_core::run::{
    COLUMNS, ExperimentFolder, FinishedRun, Format, MetricsRecord, RUN_FORMAT, RunFolder, RunStatus, compare,
};
use rxalign_dashboard::egui;
use rxalign_dashboard::panels::{Band, VisitFilter, XAxis, edit_visits, series};
use rxalign_dashboard::{Dashboard, Refresh, RunId, RunStore, Tab};
use rxalign_experiment::progress::Silent;
use rxalign_experiment::runner::{RunOptions, run_all, write_plan};
use rxalign_experiment::{Plugins, load};

const TINY: &str = r#"(
    schema_version: 1,
    name: "tiny",
    data: (kind: "synthetic", patients: 120),
    policy: (kind: "set_encoder", hidden: 16, budget: 12),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [
        (kind: "classifier", hidden: 16, epochs: 3),
        (kind: "sft", epochs: 2),
        (kind: "start_from", method: "classifier"),
        (kind: "step_grpo", iterations: 2, visits: 4, group: 2),
    ],
    eval: (trajectories: 3),
    ablations: (
        variants: [
            (name: "noisy", set: {"data.noise": 0.2}),
            (name: "clean", set: {"data.noise": 0.0}),
        ],
        grid: {"seed": [1, 2, 3]},
    ),
)"#;

/// The runs folder, made once per test binary: `tiny` with five of its six
/// runs run (`clean.seed=3` stays planned), then `noisy.seed=3` marked
/// failed, and a copy of `clean.seed=2` whose `run.json` claims format 9.0.
fn runs() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("tiny.ron");
        std::fs::write(&file, TINY).unwrap();
        let plugins = Plugins::builtin();
        let (exp, plans) = load(&file, &plugins).unwrap();
        let root = tmp.path().join("runs");
        let dir = root.join("tiny");
        write_plan(&dir, &exp, &plans).unwrap();
        let run: Vec<_> = plans
            .iter()
            .filter(|p| p.plan.name != "clean.seed=3")
            .cloned()
            .collect();
        let outcomes = run_all(
            &run,
            &plugins,
            &dir,
            &RunOptions {
                jobs: 2,
                overwrite: false,
            },
            &Silent,
        );
        assert_eq!(outcomes.len(), 5);
        let folder = ExperimentFolder::at(&dir);
        let failed = folder.run("noisy.seed=3");
        let mut record = failed.read_record().unwrap();
        record.status = RunStatus::Failed;
        record.error = Some("stages[3] `step_grpo`: the loss diverged (marked by the test)".into());
        failed.write_record(&record).unwrap();
        let newer = dir.join("clean.seed=9");
        std::fs::create_dir_all(&newer).unwrap();
        let text = std::fs::read_to_string(dir.join("clean.seed=2/run.json")).unwrap();
        std::fs::write(
            newer.join("run.json"),
            text.replace(&format!("\"format\": \"{RUN_FORMAT}\""), "\"format\": \"9.0\""),
        )
        .unwrap();
        (tmp, root)
    })
    .1
}

fn harness(tab: Tab) -> Harness<'static, Dashboard> {
    let mut d = Dashboard::open(runs().to_path_buf());
    d.tab = tab;
    // Wide enough for every column of the drugs table (a narrower window
    // scrolls it sideways, and a click lands only on what is in view).
    Harness::builder()
        .with_size(egui::vec2(2600.0, 4000.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d)
}

/// The recorded trajectories of a run of `tiny`.
fn recorded(run: &str) -> Vec<rxalign_core::Trajectory> {
    RunStore::open(runs().to_path_buf())
        .run(&id(run))
        .unwrap()
        .trajectories
        .value
        .clone()
        .unwrap()
}

/// The trajectories of run `rid` as the dashboard's store holds them.
fn held(h: &Harness<'static, Dashboard>, rid: &RunId) -> Vec<rxalign_core::Trajectory> {
    h.state()
        .store
        .run(rid)
        .unwrap()
        .trajectories
        .value
        .clone()
        .unwrap()
}

fn id(run: &str) -> RunId {
    RunId {
        experiment: "tiny".into(),
        run: run.into(),
    }
}

#[test]
fn the_runs_panel_groups_seeds_and_shows_every_state() {
    let mut h = harness(Tab::Runs);
    h.run();
    h.get_by_label("noisy (3 runs)");
    // clean.seed=3 is planned; clean.seed=9 is a folder of a newer format.
    h.get_by_label("clean (3 runs)");
    h.get_by_label("(unreadable run.json) (1 run)");
    h.get_by_label("7 run(s), 4 finished, 1 planned, 1 failed, 1 unreadable");
    h.get_by_label_contains("format version 9.0 is newer than this rxalign reads");
    h.get_by_label_contains("error: stages[3] `step_grpo`: the loss diverged");
    assert_eq!(h.get_all_by_label("planned").count(), 1);
    assert_eq!(h.get_all_by_label("finished").count(), 4);
    h.get_by_label("clean.seed=1").click();
    h.run();
    assert!(h.state().selection.runs.contains(&id("clean.seed=1")));
    // The filter keeps the matching runs only.
    h.get_by_label("Filter:");
    h.state_mut().runs.filter = "noisy".into();
    h.run();
    assert!(h.query_by_label("clean.seed=1").is_none());
    h.get_by_label("noisy.seed=2");
}

#[test]
fn an_empty_or_missing_runs_folder_is_a_notice() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("absent")] {
        let mut d = Dashboard::open(dir);
        d.tab = Tab::Runs;
        let mut h = Harness::builder()
            .with_size(egui::vec2(800.0, 600.0))
            .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
        for tab in [Tab::Runs, Tab::Curves, Tab::Trajectory, Tab::Ablation, Tab::Drugs] {
            h.state_mut().tab = tab;
            h.run();
        }
        assert!(h.state().store.notice.is_some());
    }
}

#[test]
fn the_curves_panel_draws_group_means_over_seeds() {
    let mut h = harness(Tab::Runs);
    h.run();
    h.get_by_label("Tick all of noisy").click();
    h.run();
    h.get_by_label("Curves").click();
    h.run();
    h.get_by_label_contains("jaccard on split `val`: the line is the mean over each group's seeds");
    h.get_by_label("individual seeds").click();
    h.get_by_label("wall time").click();
    h.run();
    assert!(h.state().curves.show_seeds);
    assert_eq!(h.state().curves.x, XAxis::WallTime);
    // The mean at each step is the mean over the seeds' logged values.
    let store = RunStore::open(runs().to_path_buf());
    let ids: Vec<RunId> = ["noisy.seed=1", "noisy.seed=2"].map(id).to_vec();
    let s = series(&store, &ids, "jaccard", "val", XAxis::Step, Band::MinMax);
    let sft = s.iter().find(|s| s.name.starts_with("noisy · sft")).unwrap();
    assert_eq!(sft.seeds.len(), 2);
    for (k, p) in sft.mean.iter().enumerate() {
        let ys: Vec<f64> = sft.seeds.iter().map(|(_, pts)| pts[k][1]).collect();
        assert!((p[1] - (ys[0] + ys[1]) / 2.0).abs() < 1e-12);
        assert_eq!(sft.lower[k], ys[0].min(ys[1]));
        assert_eq!(sft.upper[k], ys[0].max(ys[1]));
    }
    // Stages are told apart: each stage is its own series.
    assert!(s.iter().any(|s| s.name.contains("step_grpo")));
}

#[test]
fn the_trajectory_panel_shows_steps_timeline_and_a_second_run() {
    let mut h = harness(Tab::Trajectory);
    h.state_mut().trajectory.run = Some(id("clean.seed=1"));
    h.run();
    h.get_by_label_contains("Per-drug timeline");
    h.get_by_label_contains("start list (");
    h.get_by_label("step 1").click();
    h.run();
    assert_eq!(h.state().trajectory.step, Some(0));
    h.get_by_label_contains("list after step 1:");
    // The same visit by another method of the run, side by side.
    let ts = recorded("clean.seed=1");
    let visit = h.state().trajectory.visit;
    let j = (0..ts.len())
        .find(|&j| j != visit && ts[j].visit_id == ts[visit].visit_id)
        .expect("each method's trajectories cover the same visits");
    h.state_mut().trajectory.other = Some((id("clean.seed=1"), j));
    h.run();
    h.get_by_label_contains("drug(s) end differently");
}

#[test]
fn the_trajectory_panel_shows_the_visit_with_its_note_marked() {
    let store = RunStore::open(runs().to_path_buf());
    let run = store.run(&id("clean.seed=1")).unwrap();
    let ts = run.trajectories.value.as_ref().unwrap();
    let visits = run.visits.value.as_ref().unwrap();
    // Each visit of the trajectories once, in their order.
    let mut ids: Vec<&str> = ts.iter().map(|t| t.visit_id.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    ids.retain(|v| seen.insert(*v));
    assert_eq!(
        visits.iter().map(|v| v.visit_id.as_str()).collect::<Vec<_>>(),
        ids
    );
    // The synthetic clinic's notes name conditions, and its codes have names.
    let v = &visits[0];
    assert!(!v.diagnoses.is_empty() && v.diagnoses.iter().all(|d| !d.name.is_empty()));
    assert!(v.age.is_some() && v.sex.is_some());
    let with_note = visits
        .iter()
        .find(|v| !v.mentions.is_empty())
        .expect("a note with mentions");
    let note = with_note.note.as_deref().unwrap();
    for m in &with_note.mentions {
        assert!(!note[m.start..m.end].trim().is_empty());
    }
    let truth = &ts[0].ground_truth;
    assert_eq!(&v.ground_truth, truth);

    let mut h = harness(Tab::Trajectory);
    h.state_mut().trajectory.run = Some(id("clean.seed=1"));
    h.run();
    h.get_by_label_contains(&format!("visit {} of patient", v.visit_id));
    h.get_by_label_contains("diagnoses (");
    h.get_by_label_contains("procedures (");
    h.get_by_label_contains("note: highlighted mentions of");
    h.get_by_label_contains(" drugs (");
    h.get_by_label_contains(" conditions (");
    h.get_by_label_contains(" allergies (");
}

/// A copy of `clean.seed=1` in its own runs folder, changed by `edit`.
fn copy_of_run(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, RunId) {
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
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old").join("r.seed=1");
    copy_dir(&runs().join("tiny/clean.seed=1"), &dir);
    edit(&dir);
    let rid = RunId {
        experiment: "old".into(),
        run: "r.seed=1".into(),
    };
    (tmp, rid)
}

#[test]
fn a_run_of_format_1_0_shows_notices_for_what_it_lacks() {
    // As rxalign 1.0 wrote it: no visits.jsonl, no edits in the summary.
    let (tmp, rid) = copy_of_run(|dir| {
        std::fs::remove_file(dir.join("visits.jsonl")).unwrap();
        let path = dir.join("summary.json");
        let mut summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        summary["format"] = "1.0".into();
        for (_, m) in summary["methods"].as_object_mut().unwrap() {
            m.as_object_mut().unwrap().remove("edits");
        }
        std::fs::write(&path, summary.to_string()).unwrap();
    });
    let mut d = Dashboard::open(tmp.path().to_path_buf());
    d.tab = Tab::Trajectory;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1600.0, 3000.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
    h.run();
    h.get_by_label_contains("this run has no visits.jsonl");
    h.get_by_label_contains("Per-drug timeline");
    h.state_mut().tab = Tab::Drugs;
    h.state_mut().drugs.run = Some(rid);
    h.run();
    h.get_by_label_contains("removed rightly / wrongly: n/a");
    assert!(h.get_all_by_label("n/a").count() > 0);
}

#[test]
fn a_metric_of_a_researchers_own_reaches_the_ablation_table_and_the_curves() {
    let (tmp, rid) = copy_of_run(|dir| {
        let folder = RunFolder::at(dir);
        let mut summary = folder.read_summary().unwrap();
        for m in summary.methods.values_mut() {
            m.metrics.insert("my_safety_score".into(), Some(0.75));
        }
        folder.write_summary(&summary).unwrap();
        let mut record = MetricsRecord::new(1, "val", "sft", Default::default());
        record.metrics.insert("my_safety_score".into(), Some(0.5));
        // A reward term of the researcher's own, on sft's final test lists
        // (reward terms live in metrics.jsonl, not in the summary).
        let mut term = MetricsRecord::new(9, "test", "sft", Default::default());
        term.metrics.insert("reward/my_term".into(), Some(0.25));
        folder.append_metrics(&[record, term]).unwrap();
    });
    let mut d = Dashboard::open(tmp.path().to_path_buf());
    d.tab = Tab::Ablation;
    d.selection.runs.insert(rid.clone());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1600.0, 3000.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
    h.run();
    h.get_by_label("my_safety_score");
    h.get_by_label("Copy CSV").click();
    h.run();
    let csv = h.state().ablation.last_export.clone().unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<std::collections::HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .map(String::from)
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    assert!(rows.iter().all(|r| r["my_safety_score_mean"] == "0.75"), "{csv}");
    let sft = rows.iter().find(|r| r["method"] == "sft").unwrap();
    assert_eq!(sft["reward/my_term_mean"], "0.25", "{csv}");
    h.get_by_label("reward/my_term");
    let s = series(
        &h.state().store,
        std::slice::from_ref(&rid),
        "my_safety_score",
        "val",
        XAxis::Step,
        Band::Std,
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].mean, vec![[1.0, 0.5]]);
}

#[test]
fn the_drugs_panel_shows_removals_and_says_what_they_count() {
    let store = RunStore::open(runs().to_path_buf());
    let run = store.run(&id("clean.seed=1")).unwrap();
    let summary = run.summary.value.as_ref().unwrap();
    let edits = summary.methods["step_grpo"].edits.as_ref().unwrap();
    assert_eq!(edits.visits, summary.methods["step_grpo"].visits);
    assert_eq!(edits.starts, "the start lists the policy decoded from");
    let mut h = harness(Tab::Drugs);
    h.state_mut().drugs.run = Some(id("clean.seed=1"));
    h.state_mut().drugs.method = Some("step_grpo".into());
    h.run();
    h.get_by_label("removed rightly");
    h.get_by_label("removed wrongly");
    h.get_by_label_contains(&format!(
        "net edits (added: in the final list, not in the start list; removed: in the start list, not in the final list; rightly when that agrees with the prescription) over all {} test visits, counted from the start lists the policy decoded from",
        edits.visits
    ));
}

#[test]
fn a_watched_store_sees_a_new_line_when_it_is_written() {
    let (tmp, rid) = copy_of_run(|_| {});
    let mut store = RunStore::open_watched(tmp.path().to_path_buf(), None);
    assert_eq!(store.refresh_mode(), &Refresh::Watching);
    let count = |s: &RunStore| s.run(&rid).unwrap().metrics.value.as_ref().unwrap().len();
    let before = count(&store);
    let folder = RunFolder::at(tmp.path().join("old/r.seed=1"));
    folder
        .append_metrics(&[MetricsRecord::new(99, "val", "sft", Default::default())])
        .unwrap();
    // Well within the backstop interval: only the watcher's event makes the
    // store look before it.
    let waited = std::time::Instant::now();
    while count(&store) == before && waited.elapsed() < rxalign_dashboard::store::BACKSTOP_EVERY / 2 {
        store.poll();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(count(&store), before + 1);
    assert_eq!(
        store.run(&rid).unwrap().metrics.value.as_ref().unwrap()[before].step,
        99
    );
}

#[test]
fn a_store_that_cannot_watch_falls_back_to_polling_and_watches_once_it_can() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("not yet");
    let mut store = RunStore::open_watched(root.clone(), None);
    assert!(matches!(store.refresh_mode(), Refresh::Fallback(_)));
    assert!(store.notice.is_some());
    std::fs::create_dir_all(&root).unwrap();
    std::thread::sleep(rxalign_dashboard::store::POLL_EVERY);
    store.poll();
    assert_eq!(store.refresh_mode(), &Refresh::Watching);
}

#[test]
fn the_ablation_export_matches_compare() {
    let mut h = harness(Tab::Ablation);
    h.run();
    h.get_by_label("Copy CSV").click();
    h.run();
    let csv = h.state().ablation.last_export.clone().unwrap();
    // What `rxalign compare --format csv` prints for the folder's finished
    // runs (it refuses the folder as a whole for its unreadable run.json).
    let finished: Vec<FinishedRun> = ExperimentFolder::at(runs().join("tiny"))
        .root()
        .read_dir()
        .unwrap()
        .filter_map(|e| {
            let folder = RunFolder::at(e.unwrap().path());
            let record = folder
                .read_record()
                .ok()
                .filter(|r| r.status == RunStatus::Finished)?;
            let summary = folder.read_summary().ok()?;
            let methods = summary.ordered().into_iter().map(String::from).collect();
            Some(FinishedRun {
                record,
                folder,
                summary,
                methods,
            })
        })
        .collect::<Vec<_>>();
    let mut finished = finished;
    finished.sort_by(|a, b| a.record.run.cmp(&b.record.run));
    assert_eq!(finished.len(), 4);
    let reference = compare(&finished).render(Format::Csv);
    let read = |text: &str| -> Vec<std::collections::HashMap<String, String>> {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().clone();
        r.records()
            .map(|rec| {
                header
                    .iter()
                    .map(String::from)
                    .zip(rec.unwrap().iter().map(String::from))
                    .collect()
            })
            .collect()
    };
    let (ours, theirs) = (read(&csv), read(&reference));
    assert_eq!(ours.len(), theirs.len());
    assert!(!ours.is_empty());
    for a in &ours {
        let b = theirs
            .iter()
            .find(|b| (&b["group"], &b["method"]) == (&a["group"], &a["method"]))
            .unwrap();
        assert_eq!(a["seeds"], b["seeds"]);
        for c in COLUMNS {
            for s in ["mean", "std"] {
                let k = format!("{c}_{s}");
                assert_eq!(a[&k], b[&k], "{k}");
            }
        }
    }
    // The settings column that differs between the groups, and not the seed.
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("data.noise") && !header.contains(",seed,"),
        "{header}"
    );
    h.get_by_label("Copy LaTeX").click();
    h.run();
    assert!(
        h.state()
            .ablation
            .last_export
            .as_ref()
            .unwrap()
            .contains("\\begin{tabular}")
    );
    h.get_by_label("DDI rate pooled").click();
    h.run();
    h.get_by_label_contains("x: ddi_rate_pooled");
}

#[test]
fn the_drugs_panel_counts_and_sorts_and_opens_a_visit() {
    let mut h = harness(Tab::Drugs);
    h.state_mut().drugs.run = Some(id("clean.seed=1"));
    h.run();
    h.get_by_label_contains("missed").click();
    h.run();
    assert_eq!(h.state().drugs.sort, (5, true));
    h.get_by_label_contains("missed").click();
    h.run();
    assert_eq!(h.state().drugs.sort, (5, false));
    // A drug that went wrong on a visit with a recorded trajectory opens it.
    h.get_all_by_label_contains("open P").next().unwrap().click();
    h.run();
    assert_eq!(h.state().tab, Tab::Trajectory);
    assert_eq!(h.state().trajectory.run, Some(id("clean.seed=1")));
}

#[test]
fn the_store_rereads_what_changed_and_skips_a_half_written_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("live").join("r.seed=1");
    std::fs::create_dir_all(&run).unwrap();
    let src = runs().join("tiny/clean.seed=1");
    for f in ["run.json", "metrics.jsonl"] {
        std::fs::copy(src.join(f), run.join(f)).unwrap();
    }
    let mut store = RunStore::open(tmp.path().to_path_buf());
    let rid = RunId {
        experiment: "live".into(),
        run: "r.seed=1".into(),
    };
    let count = |s: &RunStore| s.run(&rid).unwrap().metrics.value.as_ref().unwrap().len();
    let before = count(&store);
    let generation = store.generation();
    assert!(!store.reload(), "nothing changed");
    // A writer killed in the middle of a line.
    use std::io::Write;
    let path = run.join("metrics.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{\"step\":7,\"split\":\"val\",\"meth").unwrap();
    drop(f);
    store.reload();
    assert_eq!(count(&store), before);
    assert!(store.run(&rid).unwrap().metrics.problem.is_none());
    // The next writer cuts it off and appends whole lines.
    let records = store.run(&rid).unwrap().metrics.value.clone().unwrap();
    rxalign_core::run::append_jsonl(&path, &records[..1]).unwrap();
    assert!(store.reload());
    assert_eq!(count(&store), before + 1);
    assert!(store.generation() > generation);
    // A run folder that goes away leaves the store.
    std::fs::remove_file(run.join("run.json")).unwrap();
    store.reload();
    assert!(store.run(&rid).is_none());
}

/// The test visits' lists of a method's predictions file in `clean.seed=1`,
/// by visit id.
fn predicted(method: &str) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    predicted_in(runs(), &id("clean.seed=1"), method)
}

/// The same, in run `rid` of the runs folder `root`.
fn predicted_in(
    root: &Path,
    rid: &RunId,
    method: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let store = RunStore::open(root.to_path_buf());
    let run = store.run(rid).unwrap();
    run.read_predictions(method)
        .unwrap()
        .into_iter()
        .map(|p| (p.visit_id, p.drugs.into_iter().collect()))
        .collect()
}

#[test]
fn opening_a_run_selects_its_last_trained_method() {
    let mut h = harness(Tab::Trajectory);
    h.state_mut().trajectory.run = Some(id("clean.seed=1"));
    h.run();
    // The run's stages: classifier, sft, start_from, step_grpo.
    assert_eq!(h.state().trajectory.method.as_deref(), Some("step_grpo"));
    let ts = recorded("clean.seed=1");
    assert_eq!(ts[h.state().trajectory.visit].method, "step_grpo");
    assert!(h.get_all_by_label_contains("· step_grpo").next().is_some());
    // Every visit the picker lists is one of that method's.
    assert!(!h.state().trajectory.listed.is_empty());
    assert!(
        h.state()
            .trajectory
            .listed
            .iter()
            .all(|&i| ts[i].method == "step_grpo")
    );
}

#[test]
fn the_edited_filter_lists_exactly_the_visits_whose_final_list_differs_from_the_start_list() {
    // step_grpo starts from the classifier's lists (`start_from`).
    let (finals, starts, truth) = (
        predicted("step_grpo"),
        predicted("classifier"),
        predicted("ground_truth"),
    );
    let edited: std::collections::BTreeSet<&String> =
        finals.keys().filter(|v| finals[*v] != starts[*v]).collect();
    assert!(!edited.is_empty(), "the fixture's policy edits no list");
    let mut h = harness(Tab::Trajectory);
    h.state_mut().trajectory.run = Some(id("clean.seed=1"));
    h.run();
    h.get_by_label("where the policy edited").click();
    h.run();
    assert_eq!(h.state().trajectory.filter, VisitFilter::Edited);
    let store = RunStore::open(runs().to_path_buf());
    let run = store.run(&id("clean.seed=1")).unwrap();
    let ts = run.trajectories.value.clone().unwrap();
    let listed = |h: &Harness<'static, Dashboard>| -> std::collections::BTreeSet<String> {
        h.state()
            .trajectory
            .listed
            .iter()
            .map(|&i| ts[i].visit_id.clone())
            .collect()
    };
    assert_eq!(listed(&h), edited.iter().map(|v| (*v).clone()).collect());
    // The run says what it kept: every edited visit (the bound is above them).
    let kept = run.summary.value.as_ref().unwrap().methods["step_grpo"]
        .trajectories
        .clone()
        .unwrap();
    assert_eq!((kept.edited, kept.edited_kept), (edited.len(), edited.len()));
    h.get_by_label_contains(&format!("visit ({} of the", edited.len()));
    // Where it removed a true drug: a drug of the start list and of the
    // ground truth that is not in the final list.
    h.get_by_label("where it removed a true drug").click();
    h.run();
    let removed: std::collections::BTreeSet<String> = finals
        .keys()
        .filter(|v| {
            starts[*v]
                .iter()
                .any(|d| truth[*v].contains(d) && !finals[*v].contains(d))
        })
        .cloned()
        .collect();
    assert_eq!(listed(&h), removed);
}

#[test]
fn the_interacting_filter_lists_exactly_the_visits_whose_final_list_gained_an_interacting_pair() {
    // In a copy of `clean.seed=1`, one visit that step_grpo edited is made
    // to end with both drugs of an interacting pair (in its trajectory and
    // in its predictions file alike), so that the filter has a visit to
    // find whatever the fixture's small policy did.
    let mut changed = String::new();
    let (tmp, rid) = copy_of_run(|dir| {
        let folder = RunFolder::at(dir);
        let pair = folder.read_drugs().unwrap().ddi[0].clone();
        let mut ts = folder.read_trajectories().unwrap();
        let t = ts
            .iter_mut()
            .find(|t| {
                t.method == "step_grpo"
                    && t.start != t.final_list
                    && !(t.start.contains(&pair.a) && t.start.contains(&pair.b))
            })
            .unwrap();
        for d in [&pair.a, &pair.b] {
            if !t.final_list.contains(d) {
                t.final_list.push(d.clone());
            }
        }
        let (visit, list) = (t.visit_id.clone(), t.final_list.clone());
        folder.write_trajectories(&ts).unwrap();
        let path = folder.predictions_of("step_grpo");
        let mut records: Vec<rxalign_core::predictions::PredictionRecord> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let r = records.iter_mut().find(|r| r.visit_id == visit).unwrap();
        r.drugs = list;
        rxalign_core::predictions::Predictions::write(&path, &records).unwrap();
        changed = visit;
    });
    // Counted from the predictions files and drugs.json: a pair of the
    // final list that interacts, whose drugs were not both in the start list.
    let (finals, starts) = (
        predicted_in(tmp.path(), &rid, "step_grpo"),
        predicted_in(tmp.path(), &rid, "classifier"),
    );
    let ddi: std::collections::BTreeSet<(String, String)> = RunFolder::at(tmp.path().join("old/r.seed=1"))
        .read_drugs()
        .unwrap()
        .ddi
        .iter()
        .flat_map(|p| [(p.a.clone(), p.b.clone()), (p.b.clone(), p.a.clone())])
        .collect();
    let expected: std::collections::BTreeSet<String> = finals
        .iter()
        .filter(|(v, end)| {
            end.iter().any(|a| {
                end.iter().any(|b| {
                    ddi.contains(&(a.clone(), b.clone()))
                        && !(starts[*v].contains(a) && starts[*v].contains(b))
                })
            })
        })
        .map(|(v, _)| v.clone())
        .collect();
    assert!(expected.contains(&changed), "{changed} not in {expected:?}");
    let mut d = Dashboard::open(tmp.path().to_path_buf());
    d.tab = Tab::Trajectory;
    d.trajectory.run = Some(rid.clone());
    let mut h = Harness::builder()
        .with_size(egui::vec2(2600.0, 4000.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
    h.run();
    assert_eq!(h.state().trajectory.method.as_deref(), Some("step_grpo"));
    h.get_by_label("where it added an interacting pair").click();
    h.run();
    assert_eq!(h.state().trajectory.filter, VisitFilter::AddedInteracting);
    let ts = held(&h, &rid);
    let listed: std::collections::BTreeSet<String> = h
        .state()
        .trajectory
        .listed
        .iter()
        .map(|&i| ts[i].visit_id.clone())
        .collect();
    assert_eq!(listed, expected);
    // The visit shown is one of them.
    assert!(expected.contains(&ts[h.state().trajectory.visit].visit_id));
}

#[test]
fn open_in_the_drugs_panel_reaches_a_recorded_trajectory_for_every_counted_edit() {
    let store = RunStore::open(runs().to_path_buf());
    let run = store.run(&id("clean.seed=1")).unwrap();
    let summary = run.summary.value.as_ref().unwrap();
    let counted = &summary.methods["step_grpo"].edits.as_ref().unwrap().drugs;
    let ts = run.trajectories.value.clone().unwrap();
    let recorded = edit_visits(&ts, "step_grpo");
    assert!(!counted.is_empty());
    for (code, c) in counted {
        let n = c.added_right + c.added_wrong + c.removed_right + c.removed_wrong;
        assert_eq!(recorded.get(code).map_or(0, Vec::len), n, "{code}");
    }
    // The edit metrics, with their definitions.
    let mut h = harness(Tab::Drugs);
    h.state_mut().drugs.run = Some(id("clean.seed=1"));
    h.state_mut().drugs.method = Some("step_grpo".into());
    h.run();
    h.get_by_label_contains("How step_grpo edits");
    h.get_by_label("edit/lists_changed");
    h.get_by_label(rxalign_core::metrics::edit_definition("edit/jaccard_improved").unwrap());
    // A drug's edits open the visits where step_grpo edited it.
    let label_of = |n: &egui_kittest::Node<'_>| n.accesskit_node().label().unwrap_or_default();
    h.get_all_by_label_contains("edits (")
        .find(|n| label_of(n).starts_with("edits ("))
        .unwrap()
        .click();
    h.run();
    let item = h
        .get_all_by_label_contains("open ")
        .find(|n| label_of(n).contains(": "));
    let label = label_of(item.as_ref().unwrap());
    let visit = label
        .trim_start_matches("open ")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    item.unwrap().click();
    h.run();
    assert_eq!(h.state().tab, Tab::Trajectory);
    assert_eq!(h.state().trajectory.method.as_deref(), Some("step_grpo"));
    let t = &ts[h.state().trajectory.visit];
    assert_eq!(
        (t.visit_id.as_str(), t.method.as_str()),
        (visit.as_str(), "step_grpo")
    );
}

/// The characters of every text drawn at the last frame that the font of
/// its section has no glyph for.
fn missing_glyphs(h: &Harness<'static, Dashboard>) -> std::collections::BTreeSet<char> {
    fn walk(shape: &egui::Shape, out: &mut Vec<std::sync::Arc<egui::Galley>>) {
        match shape {
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            egui::Shape::Text(t) => out.push(t.galley.clone()),
            _ => {}
        }
    }
    let mut galleys = Vec::new();
    for s in &h.output().shapes {
        walk(&s.shape, &mut galleys);
    }
    let mut missing = std::collections::BTreeSet::new();
    h.ctx.fonts_mut(|f| {
        for g in &galleys {
            for section in &g.job.sections {
                let range = section.byte_range.start.0..section.byte_range.end.0;
                for c in g.job.text[range].chars() {
                    if !c.is_whitespace() && !f.has_glyph(&section.format.font_id, c) {
                        missing.insert(c);
                    }
                }
            }
        }
    });
    missing
}

#[test]
fn every_character_the_panels_draw_is_in_the_bundled_font() {
    // A generative policy's steps keep what it wrote, whatever it wrote.
    let (tmp, rid) = copy_of_run(|dir| {
        let folder = RunFolder::at(dir);
        let mut ts = folder.read_trajectories().unwrap();
        let t = ts
            .iter_mut()
            .find(|t| t.method == "step_grpo" && !t.steps.is_empty())
            .unwrap();
        for s in &mut t.steps {
            s.text = Some("aspirin ← 阿司匹林 ✓".into());
        }
        folder.write_trajectories(&ts).unwrap();
    });
    let mut d = Dashboard::open(tmp.path().to_path_buf());
    d.selection.runs.insert(rid.clone());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1600.0, 3000.0))
        .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
    h.run();
    // The box of the issue: the panel drew a generative policy's line
    // after an arrow (`code  ← "text"`) that the bundled fonts lack; the
    // text above carries it and two more such characters, so the test
    // fails wherever one is drawn as it is.
    let body = egui::TextStyle::Body.resolve(&h.ctx.global_style());
    h.ctx.fonts_mut(|f| {
        for c in ['←', '阿', '✓'] {
            assert!(!f.has_glyph(&body, c), "{c} has a glyph now: pick another");
        }
    });
    for tab in Tab::ALL {
        h.state_mut().tab = tab;
        h.run();
        if tab == Tab::Trajectory {
            // The visit whose steps carry the text.
            let ts = held(&h, &rid);
            let i = ts
                .iter()
                .position(|t| t.steps.iter().any(|s| s.text.is_some()))
                .unwrap();
            h.state_mut().trajectory.visit = i;
            h.run();
            assert!(h.get_all_by_label_contains("written \"aspirin ").next().is_some());
        }
        let missing = missing_glyphs(&h);
        assert!(
            missing.is_empty(),
            "{tab:?} draws characters without a glyph: {missing:?}"
        );
    }
}

#[test]
fn wide_tables_scroll_sideways_with_their_first_column_pinned() {
    let definitions: Vec<&str> = rxalign_core::metrics::EDIT_METRICS
        .iter()
        .map(|(_, d)| *d)
        .collect();
    // (tab, a cell of the first column, cells at the ends of rows: the
    // shortest of them that the window cuts is scrolled to)
    for (tab, first, ends) in [
        (Tab::Drugs, "drug", vec!["edited visits"]),
        // The Drugs panel's edit metrics, with their long definitions.
        (Tab::Drugs, "edit/lists_changed", definitions),
        (Tab::Ablation, "group · method", vec!["edit/removed_right"]),
    ] {
        let mut d = Dashboard::open(runs().to_path_buf());
        d.tab = tab;
        d.drugs.run = Some(id("clean.seed=1"));
        d.drugs.method = Some("step_grpo".into());
        let width = 700.0;
        let mut h = Harness::builder()
            .with_size(egui::vec2(width, 3000.0))
            .build_ui_state(|ui, d: &mut Dashboard| d.ui(ui), d);
        h.run();
        let rect = |h: &Harness<'static, Dashboard>, label: &str| h.get_by_label(label).rect();
        let first_at = rect(&h, first).min.x;
        let (last, last_at) = ends
            .iter()
            .map(|l| (*l, rect(&h, l)))
            .filter(|(_, r)| r.max.x > width)
            .min_by(|a, b| a.1.width().total_cmp(&b.1.width()))
            .unwrap_or_else(|| panic!("{tab:?}: the window cuts none of {ends:?}"));
        h.get_by_label(last).scroll_to_me();
        h.run();
        let r = rect(&h, last);
        assert!(
            r.max.x <= width && r.max.x < last_at.max.x,
            "{tab:?}: `{last}` at {last_at:?} scrolled to {r:?}"
        );
        assert_eq!(rect(&h, first).min.x, first_at, "{tab:?}: the first column moved");
    }
}
