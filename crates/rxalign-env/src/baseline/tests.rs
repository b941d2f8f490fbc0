use rxalign_core::{DdiGraph, DrugSet, Visit, Vocab};
use serde_json::json;

use super::*;

/// Diagnosis A: drug 0 always, drug 1 in a third of visits. Diagnosis B:
/// drug 2 always. Training visits 0..6, test visit 6 (A and B).
fn cohort() -> Cohort {
    let mut drugs = Vocab::new();
    for i in 0..4 {
        drugs.insert(format!("D{i}"), format!("d{i}"));
    }
    let mut dx = Vocab::new();
    dx.insert("A", "a");
    dx.insert("B", "b");
    let visit = |i: usize, diagnoses: Vec<usize>, ix: &[usize]| Visit {
        diagnoses,
        ..Visit::new(
            format!("p{i}"),
            format!("v{i}"),
            DrugSet::from_indices(4, ix.iter().copied()),
        )
    };
    let visits = vec![
        visit(0, vec![0], &[0, 1]),
        visit(1, vec![0], &[0]),
        visit(2, vec![0], &[0]),
        visit(3, vec![1], &[2]),
        visit(4, vec![1], &[2]),
        visit(5, vec![1], &[2, 3]),
        visit(6, vec![0, 1], &[0, 2]),
    ];
    Cohort::new("t", drugs, dx, Vocab::new(), visits, DdiGraph::empty(4, "none")).unwrap()
}

fn fitted(kind: &str, params: serde_json::Value) -> (Cohort, Box<dyn Recommender>) {
    let c = cohort();
    let mut r = registry().build(kind, &params, &()).unwrap();
    r.fit(&c, &[0, 1, 2, 3, 4, 5]);
    (c, r)
}

#[test]
fn most_frequent_takes_the_training_mean_size() {
    let (c, r) = fitted("most_frequent", json!(null));
    // Training mean size 8/6 rounds to 1: drug 0 (3 visits) ties drug 2 (3
    // visits); the lower index wins.
    let p = r.predict(&c, 6);
    assert_eq!(p.drugs.to_vec(), vec![0]);
    assert_eq!(p.scores.unwrap()[2], 0.5);
    let (c, r) = fitted("most_frequent", json!({"k": 2}));
    assert_eq!(r.predict(&c, 6).drugs.to_vec(), vec![0, 2]);
}

#[test]
fn cooccurrence_uses_conditional_frequencies() {
    let (c, r) = fitted("cooccurrence", json!(null));
    let p = r.predict(&c, 6);
    assert_eq!(p.drugs.to_vec(), vec![0, 2]);
    let s = p.scores.unwrap();
    assert!((s[1] - 1.0 / 3.0).abs() < 1e-12 && (s[3] - 1.0 / 3.0).abs() < 1e-12);
}

#[test]
fn everything_indicated_overprescribes() {
    // Base rates: drug 0 and 2 in half the visits, 1 and 3 in a sixth; every
    // drug has lift 2 with its own diagnosis.
    let (c, r) = fitted("everything_indicated", json!({"min_lift": 2.0}));
    assert_eq!(r.predict(&c, 6).drugs.to_vec(), vec![0, 1, 2, 3]);
    let (c, r) = fitted(
        "everything_indicated",
        json!({"min_support": 0.5, "min_lift": 2.0}),
    );
    assert_eq!(r.predict(&c, 6).drugs.to_vec(), vec![0, 2]);
    // The default lift of 3 leaves out every drug here.
    let (c, r) = fitted("everything_indicated", json!(null));
    assert!(r.predict(&c, 6).drugs.is_empty());
}

#[test]
fn records_name_visits_and_drugs_by_code() {
    let (c, r) = fitted("cooccurrence", json!(null));
    let rec = records(r.as_ref(), &c, &[6]);
    assert_eq!(rec[0].visit_id, "v6");
    assert_eq!(rec[0].drugs, vec!["D0", "D2"]);
    assert_eq!(rec[0].scores.as_ref().unwrap()["D0"], 1.0);
    let report = predict(r.as_ref(), &c, &[6]).evaluate(&c, |_| true);
    assert_eq!(report.get("jaccard"), Some(1.0));
}
