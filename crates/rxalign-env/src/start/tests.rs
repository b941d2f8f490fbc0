use rxalign_core::{DdiGraph, Visit, Vocab, seeded_rng};
use serde_json::json;

use super::*;

fn cohort() -> Cohort {
    let mut drugs = Vocab::new();
    for i in 0..40 {
        drugs.insert(format!("D{i}"), format!("drug {i}"));
    }
    let visit = |p: &str, v: &str, ix: &[usize], history: Vec<DrugSet>| Visit {
        history,
        ..Visit::new(p, v, DrugSet::from_indices(40, ix.iter().copied()))
    };
    let first = visit("p", "v1", &[1, 2, 3], vec![]);
    let second = visit("p", "v2", &(0..20).collect::<Vec<_>>(), vec![first.drugs.clone()]);
    Cohort::new(
        "t",
        drugs,
        Vocab::new(),
        Vocab::new(),
        vec![first, second],
        DdiGraph::empty(40, "none"),
    )
    .unwrap()
}

#[test]
fn empty_and_previous_visit() {
    let c = cohort();
    let r = registry();
    let mut rng = seeded_rng(0, "t");
    assert!(
        r.build("empty", &json!(null), &c)
            .unwrap()
            .start(&c, 1, &mut rng)
            .unwrap()
            .is_empty()
    );
    let prev = r.build("previous_visit", &json!(null), &c).unwrap();
    assert!(prev.start(&c, 0, &mut rng).unwrap().is_empty());
    assert_eq!(prev.start(&c, 1, &mut rng).unwrap().to_vec(), vec![1, 2, 3]);
}

#[test]
fn corrupted_rates_and_weights_hold_on_average() {
    let c = cohort();
    let start = registry()
        .build(
            "corrupted",
            &json!({"miss_rate": 0.25, "extra_rate": 0.5, "extra_weights": {"D30": 0.0}}),
            &c,
        )
        .unwrap();
    let mut rng = seeded_rng(1, "t");
    let truth = &c.visits[1].drugs;
    let (mut missed, mut extra, n) = (0usize, 0usize, 2000);
    for _ in 0..n {
        let s = start.start(&c, 1, &mut rng).unwrap();
        missed += truth.len() - s.intersection_len(truth);
        extra += s.len() - s.intersection_len(truth);
        assert!(!s.contains(30), "a drug of weight 0 is never inserted");
    }
    let miss_share = missed as f64 / (n * 20) as f64;
    let extras_per_true = extra as f64 / (n * 20) as f64;
    assert!((miss_share - 0.25).abs() < 0.02, "{miss_share}");
    assert!((extras_per_true - 0.5).abs() < 0.02, "{extras_per_true}");
}

#[test]
fn corrupted_is_seeded() {
    let c = cohort();
    let start = registry().build("corrupted", &json!(null), &c).unwrap();
    let draw = |seed| start.start(&c, 1, &mut seeded_rng(seed, "t")).unwrap();
    assert_eq!(draw(4), draw(4));
    assert!((0..10).any(|s| draw(s) != draw(4)));
}

#[test]
fn corrupted_names_unknown_codes_and_bad_rates() {
    let c = cohort();
    let err = registry()
        .build("corrupted", &json!({"miss_weights": {"ZZ": 1.0}}), &c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`ZZ`"), "{err}");
    let err = registry()
        .build("corrupted", &json!({"miss_rate": 2.0}), &c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("miss_rate"), "{err}");
}

#[test]
fn predictions_file_start() {
    let c = cohort();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    std::fs::write(&path, "{\"visit_id\": \"v2\", \"drugs\": [\"D5\", \"D7\"]}\n").unwrap();
    let start = registry()
        .build("predictions", &json!({"path": path}), &c)
        .unwrap();
    let mut rng = seeded_rng(0, "t");
    assert_eq!(start.start(&c, 1, &mut rng).unwrap().to_vec(), vec![5, 7]);
    let err = start.start(&c, 0, &mut rng).unwrap_err().to_string();
    assert!(err.contains("visit `v1` is not in"), "{err}");
    std::fs::write(&path, "{\"visit_id\": \"v2\", \"drugs\": [\"D99\"]}\n").unwrap();
    let err = registry()
        .build("predictions", &json!({"path": path}), &c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p.jsonl:1: field `drugs`") && err.contains("D99"),
        "{err}"
    );
}

#[test]
fn corrupted_extras_can_be_drawn_from_the_truths_interaction_partners() {
    let plain = cohort();
    // Visit v1 holds drugs 1, 2, 3; drugs 30 and 31 interact with drug 2.
    let ddi = DdiGraph::from_pairs(40, vec![(2, 30), (31, 2), (35, 36)], "test").unwrap();
    let c = Cohort::new(
        "t",
        plain.drugs.clone(),
        Vocab::new(),
        Vocab::new(),
        plain.visits.clone(),
        ddi,
    )
    .unwrap();
    let config = |rate: f64| json!({"miss_rate": 0.0, "extra_rate": 1.0, "interacting_extra_rate": rate});
    let partners = DrugSet::from_indices(40, [30, 31]);
    let mut rng = seeded_rng(2, "t");
    let all = registry().build("corrupted", &config(1.0), &c).unwrap();
    for _ in 0..200 {
        let s = all.start(&c, 0, &mut rng).unwrap();
        // Three extras: both partners, then one more from the rest.
        assert_eq!(s.len(), 6, "{s:?}");
        assert_eq!(s.intersection_len(&partners), 2, "{s:?}");
    }
    let none = registry().build("corrupted", &config(0.0), &c).unwrap();
    let hits: usize = (0..2000)
        .map(|_| none.start(&c, 0, &mut rng).unwrap().intersection_len(&partners))
        .sum();
    // Without it, each of the 37 other drugs is as likely: 3/37 per partner.
    let share = hits as f64 / (2000.0 * 2.0);
    assert!((share - 3.0 / 37.0).abs() < 0.02, "{share}");
    assert!(registry().build("corrupted", &config(1.5), &c).is_err());
}

#[test]
fn fitted_corruption_follows_the_errors_of_given_start_lists() {
    let c = cohort();
    // Visit 1 holds drugs 0..20. Start lists that always miss drug 0, miss
    // drug 1 half the time, and add drug 30 always and drug 31 once in
    // four.
    let starts: Vec<(usize, DrugSet)> = (0..4)
        .map(|i| {
            let mut s = DrugSet::from_indices(40, 2..20);
            if i % 2 == 0 {
                s.insert(1);
            }
            s.insert(30);
            if i == 0 {
                s.insert(31);
            }
            (1, s)
        })
        .collect();
    let (fitted, profile) = CorruptedStart::fitted(&c, starts.iter().map(|(v, s)| (*v, s)));
    assert_eq!(
        (profile.visits, profile.true_drugs, profile.misses, profile.extras),
        (4, 80, 6, 5)
    );
    assert!((fitted.miss_rate - 6.0 / 80.0).abs() < 1e-12);
    assert!((fitted.extra_rate - 5.0 / 80.0).abs() < 1e-12);
    assert_eq!(
        (
            fitted.miss_weights[0],
            fitted.miss_weights[1],
            fitted.miss_weights[2]
        ),
        (1.0, 0.5, 0.0)
    );
    assert_eq!(
        (
            fitted.extra_weights[30],
            fitted.extra_weights[31],
            fitted.extra_weights[32]
        ),
        (4.0, 1.0, 0.0)
    );
    // Drawn corruptions miss and add only those drugs, about as often.
    let mut rng = seeded_rng(7, "fitted");
    let (mut missed, mut added) = (vec![0usize; 40], vec![0usize; 40]);
    let draws = 4000;
    for _ in 0..draws {
        let s = fitted.start(&c, 1, &mut rng).unwrap();
        for d in 0..40 {
            let truth = c.visits[1].drugs.contains(d);
            missed[d] += usize::from(truth && !s.contains(d));
            added[d] += usize::from(!truth && s.contains(d));
        }
    }
    assert!(missed[2..20].iter().all(|&m| m == 0) && added[32..].iter().all(|&a| a == 0));
    let misses = (missed[0] + missed[1]) as f64 / draws as f64;
    let extras = (added[30] + added[31]) as f64 / draws as f64;
    // E[min(X, 2)] of Binomial(20, 6/80) misses and Binomial(20, 5/80)
    // extras (two drugs can carry each): 1.239 and 1.087.
    assert!((misses - 1.239).abs() < 0.06, "misses per visit {misses}");
    assert!((extras - 1.087).abs() < 0.06, "extras per visit {extras}");
    // Weighted 4:1 without replacement: drug 30 in 0.365·0.8 + 0.361 of the
    // draws, drug 31 in 0.365·0.2 + 0.361 (a ratio of about 1.5).
    let ratio = added[30] as f64 / added[31] as f64;
    assert!((ratio - 1.5).abs() < 0.12, "drug 30 against 31: {ratio}");
}
