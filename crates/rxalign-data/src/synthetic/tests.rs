use super::*;

fn small(seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        patients: 300,
        seed,
        ..SyntheticConfig::default()
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    SyntheticClinic::generate(&small(5))
        .unwrap()
        .write(dirs[0].path())
        .unwrap();
    SyntheticClinic::generate(&small(5))
        .unwrap()
        .write(dirs[1].path())
        .unwrap();
    SyntheticClinic::generate(&small(6))
        .unwrap()
        .write(dirs[2].path())
        .unwrap();
    let (a, b, c) = (
        files(dirs[0].path()),
        files(dirs[1].path()),
        files(dirs[2].path()),
    );
    assert_eq!(a.len(), 9, "{:?}", a.iter().map(|f| &f.0).collect::<Vec<_>>());
    assert_eq!(a, b);
    let visits = |f: &[(String, Vec<u8>)]| f.iter().find(|x| x.0 == "visits.jsonl").unwrap().1.clone();
    assert_ne!(visits(&a), visits(&c));
}

#[test]
fn more_patients_leave_the_first_ones_unchanged() {
    let a = SyntheticClinic::generate(&SyntheticConfig {
        patients: 20,
        ..small(1)
    })
    .unwrap();
    let b = SyntheticClinic::generate(&SyntheticConfig {
        patients: 40,
        ..small(1)
    })
    .unwrap();
    let n = a.cohort.visits.len();
    for (x, y) in a.cohort.visits.iter().zip(&b.cohort.visits[..n]) {
        assert_eq!((&x.visit_id, &x.drugs, &x.note), (&y.visit_id, &y.drugs, &y.note));
    }
}

#[test]
fn visits_are_multimorbid_with_notes_and_history() {
    let clinic = SyntheticClinic::generate(&small(2)).unwrap();
    let c = &clinic.cohort;
    assert_eq!(c.patient_count(), 300);
    for v in &c.visits {
        assert!(
            (1..=6).contains(&v.diagnoses.len()),
            "{} has {} diagnoses",
            v.visit_id,
            v.diagnoses.len()
        );
        assert!(v.note.as_deref().is_some_and(|n| n.len() > 20));
        assert!(v.time.is_some());
    }
    assert!(c.visits.iter().any(|v| v.diagnoses.len() >= 4));
    // History: a patient's second visit sees the first visit's drugs.
    let second = c.visits.iter().find(|v| v.visit_id.ends_with("-V2")).unwrap();
    let first = &c.visits[c.visit_index(&second.visit_id.replace("-V2", "-V1")).unwrap()];
    assert_eq!(second.history, vec![first.drugs.clone()]);
    let mean = c.visits.iter().map(|v| v.drugs.len()).sum::<usize>() as f64 / c.visits.len() as f64;
    assert!((3.0..15.0).contains(&mean), "mean list size {mean}");
    let ddi = evaluate(c.visits.iter().map(|v| MetricInput {
        predicted: &v.drugs,
        truth: &v.drugs,
        scores: None,
        ddi: &c.ddi,
    }));
    assert!(
        ddi.get("ddi_rate_pooled").unwrap() > 0.0,
        "real prescriptions carry some interactions"
    );
}

#[test]
fn the_ceiling_beats_the_codes_only_rule_and_noise_sets_the_ceiling() {
    let clinic = SyntheticClinic::generate(&small(3)).unwrap();
    let all: Vec<usize> = (0..clinic.cohort.visits.len()).collect();
    let ceiling = clinic.score(clinic.ceiling(), &all).get("jaccard").unwrap();
    let codes = clinic
        .score(&clinic.references[2].lists, &all)
        .get("jaccard")
        .unwrap();
    assert!(
        ceiling > codes + 0.05,
        "ceiling {ceiling:.3} against codes-only {codes:.3}"
    );
    assert!(
        (0.75..0.99).contains(&ceiling),
        "ceiling {ceiling:.3} with 5% noise"
    );
    let clean = SyntheticClinic::generate(&SyntheticConfig {
        noise: 0.0,
        ..small(3)
    })
    .unwrap();
    assert_eq!(clean.score(clean.ceiling(), &all).get("jaccard"), Some(1.0));
}

#[test]
fn notes_reveal_allergies_only_when_asked() {
    let silent = SyntheticClinic::generate(&SyntheticConfig {
        note_reveal: 0.0,
        ..small(4)
    })
    .unwrap();
    let told = SyntheticClinic::generate(&SyntheticConfig {
        note_reveal: 1.0,
        ..small(4)
    })
    .unwrap();
    let mentions = |c: &SyntheticClinic| {
        c.cohort
            .visits
            .iter()
            .filter(|v| {
                v.note
                    .as_deref()
                    .is_some_and(|n| n.contains("llerg") || n.contains("NKDA"))
            })
            .count()
    };
    assert_eq!(mentions(&silent), 0);
    assert_eq!(mentions(&told), told.cohort.visits.len());
}

#[test]
fn dataset_round_trips_through_the_folder_format() {
    let clinic = SyntheticClinic::generate(&SyntheticConfig {
        patients: 50,
        ..small(9)
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    clinic.write(dir.path()).unwrap();
    let back = crate::load_dataset(dir.path()).unwrap();
    assert_eq!(back.visits.len(), clinic.cohort.visits.len());
    assert_eq!(back.drugs.codes(), clinic.cohort.drugs.codes());
    assert_eq!(back.ddi.edges(), clinic.cohort.ddi.edges());
    for (a, b) in back.visits.iter().zip(&clinic.cohort.visits) {
        assert_eq!(a.visit_id, b.visit_id);
        assert_eq!(a.drugs, b.drugs);
        assert_eq!(a.history, b.history);
        assert_eq!(a.note, b.note);
        let codes = |c: &Cohort, ix: &[usize]| {
            ix.iter()
                .map(|&i| c.diagnoses.code(i).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&back, &a.diagnoses), codes(&clinic.cohort, &b.diagnoses));
    }
    // The reference predictions score the same through the file.
    let preds = Predictions::read(&dir.path().join(RULE_PREDICTIONS), &back).unwrap();
    assert_eq!(preds.by_visit.len(), back.visits.len());
}

#[test]
fn bad_settings_are_named() {
    let err = SyntheticConfig {
        noise: 1.5,
        ..SyntheticConfig::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("`noise`"), "{err}");
    let err = SyntheticConfig {
        max_chronic: 5,
        max_acute: 2,
        ..SyntheticConfig::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("1 to 6 conditions"), "{err}");
}

/// Issue #12 (other faults): sizes that cannot fit in memory aborted the
/// process; they are now refused naming the setting, before any allocation.
#[test]
fn sizes_beyond_memory_are_refused_naming_the_setting() {
    for (config, field) in [
        (
            SyntheticConfig {
                patients: usize::MAX,
                ..SyntheticConfig::default()
            },
            "patients",
        ),
        (
            SyntheticConfig {
                patients: 100_000,
                visits_max: 100,
                ..SyntheticConfig::default()
            },
            "patients",
        ),
        (
            SyntheticConfig {
                visits_max: usize::MAX,
                ..SyntheticConfig::default()
            },
            "visits_max",
        ),
        (
            SyntheticConfig {
                max_chronic: usize::MAX,
                ..SyntheticConfig::default()
            },
            "max_chronic",
        ),
    ] {
        let e = SyntheticClinic::generate(&config).unwrap_err().to_string();
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
}
