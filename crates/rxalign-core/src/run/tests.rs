use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;

fn record() -> RunRecord {
    let t: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
    RunRecord {
        format: RUN_FORMAT,
        experiment: "exp".into(),
        run: "base.seed=1".into(),
        group: "base".into(),
        seed: 1,
        overrides: BTreeMap::from([("seed".into(), "1".into())]),
        settings_sha256: "ab".repeat(32),
        stages: vec![StageInfo {
            index: 0,
            kind: "sft".into(),
            method: "sft".into(),
        }],
        status: RunStatus::Running,
        current: Some(StageProgress {
            index: 0,
            kind: "sft".into(),
            method: "sft".into(),
            step: 3,
            total: 10,
        }),
        created: t,
        started: Some(t),
        updated: t,
        ended: None,
        error: None,
        rxalign_version: RXALIGN_VERSION.into(),
        device: "cpu".into(),
        data: Some(DataFingerprint {
            source: "synthetic".into(),
            visits: 10,
            patients: 4,
            drugs: 3,
            ddi_pairs: 1,
            visits_sha256: "00".repeat(32),
            ddi_sha256: "11".repeat(32),
        }),
        writer: Some(Writer {
            host: "h".into(),
            pid: 7,
            started: None,
        }),
        group_settings_sha256: Some("ef".repeat(32)),
        inputs: Some(BTreeMap::from([(
            "notes.tokenizer".into(),
            InputFile {
                path: "tok.json".into(),
                sha256: "22".repeat(32),
            },
        )])),
        split: None,
    }
}

/// Issue #22 (1): a file's or folder's fingerprint follows its bytes and
/// its files' names, and the differences name the setting.
#[test]
fn input_fingerprints_follow_contents() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tok.json");
    std::fs::write(&file, "a").unwrap();
    let a = InputFile::of(&file).unwrap();
    std::fs::write(&file, "b").unwrap();
    let b = InputFile::of(&file).unwrap();
    assert_ne!(a.sha256, b.sha256);
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("x"), "ab").unwrap();
    let m1 = InputFile::of(&model).unwrap();
    std::fs::remove_file(model.join("x")).unwrap();
    std::fs::write(model.join("xa"), "b").unwrap();
    let m2 = InputFile::of(&model).unwrap();
    assert_ne!(m1.sha256, m2.sha256, "names and bytes cannot trade places");
    let old = BTreeMap::from([("notes.tokenizer".to_string(), a)]);
    let new = BTreeMap::from([("notes.tokenizer".to_string(), b)]);
    assert!(input_differences(&old, &old).is_empty());
    let d = input_differences(&old, &new);
    assert_eq!(d.len(), 1);
    assert!(
        d[0].starts_with("notes.tokenizer: ") && d[0].contains("SHA-256"),
        "{d:?}"
    );
    assert!(InputFile::of(&dir.path().join("missing")).is_err());
}

fn metrics(step: u64) -> MetricsRecord {
    let mut r = MetricsRecord::new(
        step,
        "val",
        "sft",
        BTreeMap::from([("jaccard".into(), Some(0.5)), ("prauc".into(), None)]),
    );
    r.stage = Some(StageRef {
        index: 0,
        method: "sft".into(),
    });
    r.time = Some("2026-01-02T03:04:05.25Z".parse().unwrap());
    r
}

#[test]
fn every_record_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let exp = ExperimentFolder::at(dir.path().join("exp"));
    let plan = ExperimentRecord {
        format: EXPERIMENT_FORMAT,
        name: "exp".into(),
        file: "experiments/x.ron".into(),
        file_sha256: "cd".repeat(32),
        axes: vec![Axis {
            path: "seed".into(),
            values: vec!["1".into(), "2".into()],
        }],
        variants: vec!["base".into()],
        runs: vec![PlannedRun {
            name: "base.seed=1".into(),
            group: "base".into(),
            seed: 1,
            overrides: BTreeMap::new(),
            group_settings_sha256: Some("cd".repeat(32)),
        }],
        rxalign_version: RXALIGN_VERSION.into(),
    };
    exp.write_record(&plan).unwrap();
    assert_eq!(exp.read_record().unwrap(), plan);

    let run = RunFolder::create(exp.root().join("base.seed=1")).unwrap();
    assert!(RunFolder::open(run.root()).is_err());
    run.write_record(&record()).unwrap();
    let run = RunFolder::open(run.root()).unwrap();
    assert_eq!(run.read_record().unwrap(), record());
    assert_eq!(run.name(), "base.seed=1");

    run.write_resolved("(seed: 1)").unwrap();
    assert_eq!(run.read_resolved().unwrap(), "(seed: 1)");

    run.append_metrics(&[metrics(1)]).unwrap();
    run.append_metrics(&[metrics(2), MetricsRecord::new(3, "train", "m", BTreeMap::new())])
        .unwrap();
    let back = run.read_metrics().unwrap();
    assert_eq!(back[..2], [metrics(1), metrics(2)]);
    assert_eq!(back[2].stage, None);

    let mut summary = SummaryRecord::default();
    summary.insert("sft", metrics(1).stage, 12, metrics(1).metrics);
    summary.insert("ground_truth", None, 12, BTreeMap::new());
    run.write_summary(&summary).unwrap();
    assert_eq!(run.read_summary().unwrap(), summary);
    assert_eq!(summary.ordered(), ["sft", "ground_truth"]);
    assert_eq!(summary.metric("sft", "jaccard"), Some(0.5));
    assert_eq!(summary.metric("sft", "prauc"), None);

    let drugs = DrugsRecord {
        format: RUN_FORMAT,
        source: "t".into(),
        drugs: vec![DrugEntry {
            index: 0,
            code: "A".into(),
            name: "alpha".into(),
        }],
        ddi_origin: "file".into(),
        ddi_sha256: None,
        ddi: vec![DdiPair {
            a: "A".into(),
            b: "B".into(),
            severity: Some("major".into()),
        }],
    };
    run.write_drugs(&drugs).unwrap();
    assert_eq!(run.read_drugs().unwrap(), drugs);

    let traj = Trajectory {
        visit_id: "v".into(),
        patient_id: "p".into(),
        method: "sft".into(),
        split: "test".into(),
        ground_truth: vec!["A".into()],
        start: vec![],
        steps: vec![],
        final_list: vec![],
        outcome_reward: 0.0,
        start_potential: 0.0,
        start_terms: BTreeMap::from([("jaccard".into(), 0.0)]),
        source: crate::trajectory::TrajectorySource::Decoded,
        truncated: false,
    };
    run.write_trajectories(std::slice::from_ref(&traj)).unwrap();
    assert_eq!(run.read_trajectories().unwrap(), vec![traj]);

    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(run.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn an_older_minor_version_and_unknown_fields_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    let mut value = serde_json::to_value(record()).unwrap();
    value["format"] = "1.9".into();
    value["a_field_of_version_1_9"] = serde_json::json!({"x": 1});
    std::fs::write(run.path(RUN), value.to_string()).unwrap();
    let back = run.read_record().unwrap();
    assert_eq!(back.run, "base.seed=1");
    // A record written before a minor version added optional fields.
    let mut old = serde_json::to_value(record()).unwrap();
    let fields = old.as_object_mut().unwrap();
    for f in ["current", "started", "ended", "error", "data", "writer"] {
        fields.remove(f);
    }
    fields.insert("format".into(), "1.0".into());
    std::fs::write(run.path(RUN), old.to_string()).unwrap();
    assert_eq!(run.read_record().unwrap().data, None);
    // A metrics line with a field of a newer minor version.
    std::fs::write(
        run.path(METRICS),
        "{\"step\":1,\"split\":\"val\",\"method\":\"m\",\"metrics\":{},\"new\":[1]}\n",
    )
    .unwrap();
    assert_eq!(run.read_metrics().unwrap().len(), 1);
}

#[test]
fn a_newer_major_version_is_refused_naming_the_file_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    let mut value = serde_json::to_value(record()).unwrap();
    value["format"] = "2.0".into();
    value["status"] = "something new".into();
    std::fs::write(run.path(RUN), value.to_string()).unwrap();
    let e = RunFolder::open(run.root()).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "run.json: format version 2.0 is newer than this rxalign reads ({RUN_FORMAT}"
        )),
        "{e}"
    );
    let mut summary = serde_json::to_value(SummaryRecord::default()).unwrap();
    summary["format"] = "3.1".into();
    std::fs::write(run.path(SUMMARY), summary.to_string()).unwrap();
    let e = run.read_summary().unwrap_err().to_string();
    assert!(e.contains("summary.json: format version 3.1 is newer"), "{e}");
}

#[test]
fn truncated_and_missing_records_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    let text = serde_json::to_string(&record()).unwrap();
    std::fs::write(run.path(RUN), &text[..text.len() / 2]).unwrap();
    let e = run.read_record().unwrap_err().to_string();
    assert!(
        e.contains("run.json") && e.contains("not a complete JSON record"),
        "{e}"
    );
    std::fs::write(run.path(RUN), "").unwrap();
    assert!(
        run.read_record()
            .unwrap_err()
            .to_string()
            .contains("run.json: empty file")
    );
    std::fs::write(run.path(RUN), "{\"run\": \"x\"}").unwrap();
    assert!(
        run.read_record()
            .unwrap_err()
            .to_string()
            .contains("no `format` field")
    );
    let e = run.read_summary().unwrap_err().to_string();
    assert!(e.contains("summary.json"), "{e}");
    let e = RunFolder::open(dir.path().join("nothing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a run folder: no run.json"), "{e}");
}

#[test]
fn a_half_written_last_line_is_skipped_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    run.append_metrics(&[metrics(1)]).unwrap();
    let whole = std::fs::read_to_string(run.path(METRICS)).unwrap();
    // A writer killed in the middle of its line.
    std::fs::write(run.path(METRICS), format!("{whole}{}", &whole[..20])).unwrap();
    assert_eq!(run.read_metrics().unwrap(), vec![metrics(1)]);
    // The next append cuts the torn line off first.
    run.append_metrics(&[metrics(2)]).unwrap();
    assert_eq!(run.read_metrics().unwrap(), vec![metrics(1), metrics(2)]);
    // A bad whole line is an error naming it.
    std::fs::write(
        run.path(METRICS),
        "{\"step\":1,\"split\":\"val\",\"method\":\"m\",\"metrics\":{}}\n{\"step\":\"x\"}\n",
    )
    .unwrap();
    let err = run.read_metrics().unwrap_err().to_string();
    assert!(err.contains("metrics.jsonl:2: field `step`"), "{err}");
}

#[test]
fn only_our_folders_are_emptied_and_the_lock_stays() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path().join("r")).unwrap();
    std::fs::write(run.path("precious.txt"), "mine").unwrap();
    let e = run.clear(false).unwrap_err().to_string();
    assert!(e.contains("not emptied"), "{e}");
    assert!(run.path("precious.txt").is_file());
    run.write_record(&record()).unwrap();
    let _lock = RunLock::acquire(run.root()).unwrap();
    std::fs::write(run.checkpoints().join("00-sft.ckpt"), "x").unwrap();
    std::fs::remove_file(run.path("precious.txt")).unwrap();
    assert!(run.clear(true).unwrap().is_empty());
    assert!(run.checkpoints().join("00-sft.ckpt").is_file());
    assert!(run.path(LOCK).is_file() && run.path(RUN).is_file());
}

/// Issue #22 (3): a file a user put into a run folder was deleted when the
/// run ran again.
#[test]
fn clearing_a_run_folder_removes_only_what_runs_write() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path().join("r")).unwrap();
    let mut two_stages = record();
    two_stages.stages.push(StageInfo {
        index: 1,
        kind: "grpo".into(),
        method: "grpo".into(),
    });
    run.write_record(&two_stages).unwrap();
    let ours = [
        run.path(RESOLVED),
        run.path(METRICS),
        run.path(SUMMARY),
        run.path(TOKENIZER),
        run.path(".run.json.tmp-node-1-4242424-0"),
        run.predictions_of("sft"),
        run.checkpoints().join("00-sft.ckpt"),
        run.checkpoints().join("01-grpo.best.ckpt"),
        run.path("tensorboard/events.out.tfevents.1.node"),
        run.path("tb/deeper/events.out.tfevents.2.node"),
    ];
    let users = [
        run.path("NOTES.md"),
        run.path("predictions/my-own.csv"),
        run.path("checkpoints/README"),
        run.path("tensorboard/annotations.txt"),
        // Second pass: checkpoints are the run's stages' only (its
        // record lists them), not any `.ckpt` file.
        run.path("checkpoints/mine.ckpt"),
        run.path("checkpoints/02-sft.ckpt"),
        run.path("checkpoints/00-sft.ckpt.bak"),
    ];
    for f in ours.iter().chain(&users) {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, "x").unwrap();
    }
    let mut left = run.clear(false).unwrap();
    left.sort();
    let mut expected = users.to_vec();
    expected.sort();
    assert_eq!(left, expected);
    for f in &ours {
        assert!(!f.exists(), "{} is ours and goes", f.display());
    }
    for f in &users {
        assert!(f.is_file(), "{} is the user's and stays", f.display());
    }
    assert!(run.path(RUN).is_file());
    assert!(!run.path("tb").exists(), "a folder left empty by our files goes");
}

#[test]
fn names_that_leave_their_folder_are_refused() {
    for bad in ["", "a/b", "..", "x/../y", "a\\b", ".hidden", "a..b"] {
        assert!(validate_name("experiment name", bad).is_err(), "{bad}");
    }
    for good in ["quickstart", "noisy.seed=1", "reward_1_.weight=0.5.seed=2"] {
        validate_name("run name", good).unwrap();
    }
    let e = validate_name("experiment name", "../etc")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "experiment name `../etc`: must not contain a path separator (`/` or `\\`)"
    );
}

#[test]
fn discovery_lists_planned_and_started_runs() {
    let dir = tempfile::tempdir().unwrap();
    let exp = ExperimentFolder::at(dir.path().join("exp"));
    let planned = |name: &str| PlannedRun {
        name: name.into(),
        group: "base".into(),
        seed: 1,
        overrides: BTreeMap::new(),
        group_settings_sha256: None,
    };
    exp.write_record(&ExperimentRecord {
        format: EXPERIMENT_FORMAT,
        name: "exp".into(),
        file: "x.ron".into(),
        file_sha256: String::new(),
        axes: vec![],
        variants: vec![],
        runs: vec![planned("a"), planned("b")],
        rxalign_version: RXALIGN_VERSION.into(),
    })
    .unwrap();
    let a = RunFolder::create(exp.root().join("a")).unwrap();
    let mut r = record();
    r.status = RunStatus::Finished;
    a.write_record(&r).unwrap();
    a.write_summary(&SummaryRecord::default()).unwrap();
    let broken = RunFolder::create(exp.root().join("c")).unwrap();
    std::fs::write(broken.path(RUN), "{").unwrap();
    let all = experiments(dir.path()).unwrap();
    assert_eq!(all.len(), 1);
    let view = &all[0];
    let states: Vec<(String, Option<RunState>)> =
        view.runs.iter().map(|r| (r.name.clone(), r.state())).collect();
    assert_eq!(
        states,
        [
            ("a".into(), Some(RunState::Finished)),
            ("b".into(), Some(RunState::Planned)),
            ("c".into(), None),
        ]
    );
    assert!(view.runs[2].problem.as_ref().unwrap().contains("run.json"));
    // Issue #22 (10): a finished run's damaged summary is said, not hidden
    // (`status` and the dashboard read runs through this).
    std::fs::write(a.path(SUMMARY), "{\"format\": \"1.1\", \"meth").unwrap();
    let view = &experiments(dir.path()).unwrap()[0];
    assert_eq!(view.runs[0].state(), None);
    assert!(view.runs[0].problem.as_ref().unwrap().contains("summary.json"));
    a.write_summary(&SummaryRecord::default()).unwrap();
    // An experiment's own folder reads as that experiment, with or without
    // its plan.
    std::fs::remove_file(exp.root().join(EXPERIMENT)).unwrap();
    let one = experiments(exp.root()).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].runs.len(), 2);
    let e = finished_runs(exp.root()).unwrap_err().to_string();
    assert!(e.contains("c/run.json"), "{e}");
}

#[test]
fn a_dead_writer_shows_as_interrupted() {
    let mut r = record();
    r.writer = Some(Writer {
        host: records::host_name(),
        pid: u32::MAX - 1,
        started: None,
    });
    if Path::new("/proc/self").exists() {
        assert_eq!(r.state(), RunState::Interrupted);
        r.writer = Some(Writer::this_process());
        assert_eq!(r.state(), RunState::Running);
        // Issue #22 (10): the pid now names another process (reused).
        let mut reused = Writer::this_process();
        assert!(reused.started.is_some());
        reused.started = Some("another-boot:12345".into());
        r.writer = Some(reused);
        assert_eq!(r.state(), RunState::Interrupted);
    }
    r.writer = Some(Writer {
        host: "another-host".into(),
        pid: 1,
        started: None,
    });
    assert_eq!(r.state(), RunState::Running);
}

/// A cohort of two visits of one patient, built by code.
fn tiny_cohort() -> crate::Cohort {
    let mut drugs = crate::Vocab::new();
    let aspirin = drugs.insert("B01AC06", "aspirin");
    let metformin = drugs.insert("A10BA02", "metformin");
    let mut dx = crate::Vocab::new();
    let htn = dx.insert("4019", "hypertension");
    let mut px = crate::Vocab::new();
    let ecg = px.insert("8952", "Electrocardiogram");
    let first = crate::Visit::new("p", "v1", crate::DrugSet::from_indices(2, [metformin]));
    let mut second = crate::Visit::new("p", "v2", crate::DrugSet::from_indices(2, [aspirin, metformin]));
    second.age = Some(67.0);
    second.sex = Some(crate::Sex::Female);
    second.diagnoses = vec![htn];
    second.procedures = vec![ecg];
    second.history = vec![first.drugs.clone()];
    second.note =
        Some("History of Hypertension. Allergic to penicillin. Home medications: metformin.".into());
    crate::Cohort::new(
        "t",
        drugs,
        dx,
        px,
        vec![first, second],
        crate::DdiGraph::empty(2, "none"),
    )
    .unwrap()
}

#[test]
fn visits_round_trip_with_names_and_note_mentions() {
    let cohort = tiny_cohort();
    let mut lexicon = Lexicon::of(&cohort);
    lexicon.add(MentionKind::Allergy, "penicillin", None);
    let v = VisitDetails::of(&cohort, 1, "test", &lexicon);
    assert_eq!(
        v.diagnoses,
        [NamedCode {
            code: "4019".into(),
            name: "hypertension".into()
        }]
    );
    assert_eq!(v.procedures[0].name, "Electrocardiogram");
    assert_eq!(v.previous_drugs, Some(vec!["A10BA02".to_string()]));
    assert_eq!(v.ground_truth, ["B01AC06", "A10BA02"]);
    let note = v.note.as_deref().unwrap();
    let marked: Vec<(&str, MentionKind)> = v
        .mentions
        .iter()
        .map(|m| (&note[m.start..m.end], m.kind))
        .collect();
    assert_eq!(
        marked,
        [
            ("Hypertension", MentionKind::Condition),
            ("Allergic", MentionKind::Allergy),
            ("penicillin", MentionKind::Allergy),
            ("metformin", MentionKind::Drug),
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    // A run of format 1.0 has no visits file: no lines, no error.
    assert!(run.read_visits().unwrap().is_empty());
    let first = VisitDetails::of(&cohort, 0, "test", &lexicon);
    assert_eq!((first.previous_drugs.clone(), first.note.clone()), (None, None));
    run.write_visits(&[v.clone(), first.clone()]).unwrap();
    assert_eq!(run.read_visits().unwrap(), vec![v, first]);
    // A long note is cut at the bound, on a character boundary, and says so.
    let mut long = tiny_cohort();
    long.visits[1].note = Some("é".repeat(visits::MAX_NOTE_BYTES));
    let cut = VisitDetails::of(&long, 1, "test", &lexicon);
    assert!(cut.note_cut && cut.note.as_ref().unwrap().len() <= visits::MAX_NOTE_BYTES);
}

#[test]
fn net_edits_are_counted_per_drug_and_read_back_and_a_summary_of_1_0_has_none() {
    let cohort = tiny_cohort();
    let set = |ix: &[usize]| crate::DrugSet::from_indices(2, ix.iter().copied());
    let mut edits = EditCounts::new("test", "the start lists the policy decoded from");
    // Truth {0, 1}: start {0} -> end {1}: aspirin removed wrongly, metformin added rightly.
    edits.count(&set(&[0]), &set(&[1]), &set(&[0, 1]), &cohort.drugs, None);
    // Truth {1}: start {0, 1} -> end {}: aspirin removed rightly, metformin removed wrongly.
    edits.count(&set(&[0, 1]), &set(&[]), &set(&[1]), &cohort.drugs, None);
    // Truth {}: start {} -> end {0}: aspirin added wrongly.
    edits.count(&set(&[]), &set(&[0]), &set(&[]), &cohort.drugs, None);
    assert_eq!(edits.visits, 3);
    let c = |a, b, r, w| DrugEditCounts {
        added_right: a,
        added_wrong: b,
        removed_right: r,
        removed_wrong: w,
    };
    assert_eq!(edits.drugs["B01AC06"], c(0, 1, 1, 1));
    assert_eq!(edits.drugs["A10BA02"], c(1, 0, 0, 1));
    let mut summary = SummaryRecord::default();
    summary.insert("sft", None, 3, BTreeMap::new());
    assert!(summary.set_edits("sft", edits.clone()));
    assert!(!summary.set_edits("absent", edits.clone()));
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path()).unwrap();
    run.write_summary(&summary).unwrap();
    assert_eq!(run.read_summary().unwrap().methods["sft"].edits, Some(edits));
    std::fs::write(
        run.path(SUMMARY),
        r#"{"format": "1.0", "split": "test", "methods": {"sft": {"order": 0, "visits": 3, "metrics": {}}}}"#,
    )
    .unwrap();
    assert_eq!(run.read_summary().unwrap().methods["sft"].edits, None);
}

#[test]
fn a_metric_of_a_researchers_own_becomes_a_column_after_the_standard_ones() {
    let dir = tempfile::tempdir().unwrap();
    let finished = |seed: u64, own: Option<f64>| {
        let mut r = record();
        r.seed = seed;
        r.status = RunStatus::Finished;
        let mut metrics: BTreeMap<String, Option<f64>> =
            COLUMNS.iter().map(|c| (c.to_string(), Some(0.5))).collect();
        metrics.insert("precision".into(), Some(0.1));
        if let Some(v) = own {
            metrics.insert("my_safety_score".into(), Some(v));
        }
        let mut summary = SummaryRecord::default();
        summary.insert("sft", None, 10, metrics);
        FinishedRun {
            record: r,
            folder: RunFolder::at(dir.path()),
            summary,
            methods: vec!["sft".into()],
        }
    };
    let standard = [finished(1, None), finished(2, None)];
    let plain = compare(&standard);
    assert_eq!(plain.columns, COLUMNS.map(String::from));
    let text = plain.render(Format::Text);
    let words: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(words[..3], ["group", "method", "seeds"]);
    assert_eq!(words[3..], COLUMNS);
    let with = [finished(1, Some(0.2)), finished(2, Some(0.4))];
    let own = compare(&with);
    assert_eq!(own.columns.len(), COLUMNS.len() + 1);
    assert_eq!(own.columns[..COLUMNS.len()], plain.columns[..]);
    assert_eq!(own.columns.last().unwrap(), "my_safety_score");
    let cell = own.rows[0].2.last().unwrap().as_ref().unwrap();
    assert!((cell.mean - 0.3).abs() < 1e-12 && cell.n == 2);
    // The standard columns print the same, the own one after them.
    let csv = own.render(Format::Csv);
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with(plain.render(Format::Csv).lines().next().unwrap()),
        "{header}"
    );
    assert!(
        header.ends_with(",my_safety_score_mean,my_safety_score_std"),
        "{header}"
    );
    // A run without it shows n/a there.
    let mixed = compare(&[finished(1, Some(0.2)), finished(2, None)]);
    assert_eq!(mixed.rows[0].2.last().unwrap().as_ref().unwrap().n, 1);
}

#[test]
fn edit_metrics_get_a_table_of_their_own_with_definitions_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let finished = |seed: u64, changed: f64| {
        let mut r = record();
        r.seed = seed;
        r.status = RunStatus::Finished;
        let metrics: BTreeMap<String, Option<f64>> =
            COLUMNS.iter().map(|c| (c.to_string(), Some(0.5))).collect();
        let mut summary = SummaryRecord::default();
        summary.insert("classifier", None, 10, metrics.clone());
        let mut edited = metrics;
        edited.insert("edit/lists_changed".into(), Some(changed));
        edited.insert("edit/jaccard_improved".into(), Some(0.5));
        edited.insert("my_safety_score".into(), Some(0.1));
        summary.insert("grpo", None, 10, edited);
        FinishedRun {
            record: r,
            folder: RunFolder::at(dir.path()),
            summary,
            methods: vec!["classifier".into(), "grpo".into()],
        }
    };
    let c = compare(&[finished(1, 20.0), finished(2, 30.0)]);
    // After the standard and the researcher's own columns, in report order.
    assert_eq!(
        c.columns[COLUMNS.len()..],
        ["my_safety_score", "edit/lists_changed", "edit/jaccard_improved"]
    );
    let text = c.render(Format::Text);
    let (metrics, edits) = text
        .split_once("edits of the methods that start from a list")
        .unwrap();
    assert!(!metrics.contains("edit/"), "{text}");
    assert!(metrics.contains("classifier") && metrics.contains("my_safety_score"));
    // The definitions, then only the methods that edit, mean ± std over seeds.
    assert!(edits.contains(&format!(
        "edit/lists_changed: {}",
        crate::metrics::edit_definition("edit/lists_changed").unwrap()
    )));
    assert!(!edits.contains("classifier"), "{edits}");
    assert!(edits.contains("25.0000 ± 7.0711"), "{edits}");
    // CSV: one table of every column.
    let csv = c.render(Format::Csv);
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().next().unwrap().ends_with("edit/jaccard_improved_std"));
    // Per patient too: the edit metrics are counted over the lists as a
    // whole, the same whichever mean the other columns take.
    let per_patient = compare_with(&[finished(1, 20.0), finished(2, 30.0)], Mean::PerPatient);
    assert_eq!(
        per_patient.columns[COLUMNS.len()..],
        ["edit/lists_changed", "edit/jaccard_improved"]
    );
    assert!(
        per_patient.render(Format::Text).contains("25.0000 ± 7.0711"),
        "{}",
        per_patient.render(Format::Text)
    );
    // Without an editor, no second table.
    let plain = FinishedRun {
        methods: vec!["classifier".into()],
        ..finished(1, 1.0)
    };
    assert!(!compare(&[plain]).render(Format::Text).contains("edits of"));
}

/// Issue #22, second pass: a temporary of another process of this machine
/// was removed while that process still ran; only a gone writer's are.
#[test]
fn a_live_writers_temporary_stays() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::create(dir.path().join("r")).unwrap();
    run.write_record(&record()).unwrap();
    let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let host = records::host_name();
    let of_live = run.path(&format!(".summary.json.tmp-{host}-{}-0", live.id()));
    let of_dead = run.path(&format!(".summary.json.tmp-{host}-4242424-0"));
    for f in [&of_live, &of_dead] {
        std::fs::write(f, "x").unwrap();
    }
    let left = run.clear(false).unwrap();
    let kept = of_live.exists();
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(kept, "a live writer's temporary stays");
    assert_eq!(left, vec![of_live.clone()], "and is named");
    assert!(!of_dead.exists(), "a gone writer's temporary is removed");
    run.clear(false).unwrap();
    assert!(!of_live.exists(), "once its writer is gone, it is removed");
}
