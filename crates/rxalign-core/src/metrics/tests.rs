use proptest::prelude::*;

use super::*;

fn set(width: usize, ix: &[usize]) -> DrugSet {
    DrugSet::from_indices(width, ix.iter().copied())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn hand_worked_visit() {
    // P = {0,1,2,3}, G = {2,3,4}: |P∩G| = 2, |P∪G| = 5.
    let p = set(6, &[0, 1, 2, 3]);
    let g = set(6, &[2, 3, 4]);
    assert!(close(jaccard(&p, &g), 0.4));
    assert!(close(precision(&p, &g), 0.5));
    assert!(close(recall(&p, &g), 2.0 / 3.0));
    assert!(close(f1(&p, &g), 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0)));
    // Interactions 0-1 and 2-5: only 0-1 lies in P, one pair of six.
    let ddi = DdiGraph::from_pairs(6, [(0, 1), (2, 5)], "t").unwrap();
    assert!(close(ddi_rate(&p, &ddi), 1.0 / 6.0));
}

#[test]
fn edge_cases() {
    let empty = DrugSet::empty(4);
    let one = set(4, &[1]);
    let all = DrugSet::full(4);
    let ddi = DdiGraph::from_pairs(4, [(0, 1), (1, 2), (2, 3), (0, 3)], "t").unwrap();
    // Empty prediction.
    assert_eq!(jaccard(&empty, &one), 0.0);
    assert_eq!(precision(&empty, &one), 0.0);
    assert_eq!(recall(&empty, &one), 0.0);
    assert_eq!(f1(&empty, &one), 0.0);
    assert_eq!(ddi_rate(&empty, &ddi), 0.0);
    // Empty ground truth, and both empty.
    assert_eq!(jaccard(&one, &empty), 0.0);
    assert_eq!(jaccard(&empty, &empty), 0.0);
    assert_eq!(recall(&one, &empty), 0.0);
    assert_eq!(precision(&one, &empty), 0.0);
    // One drug, right: perfect scores, no pairs.
    assert_eq!(jaccard(&one, &one), 1.0);
    assert_eq!(f1(&one, &one), 1.0);
    assert_eq!(ddi_rate(&one, &ddi), 0.0);
    // Every drug against one.
    assert!(close(jaccard(&all, &one), 0.25));
    assert!(close(precision(&all, &one), 0.25));
    assert_eq!(recall(&all, &one), 1.0);
    assert!(close(ddi_rate(&all, &ddi), 4.0 / 6.0));
}

#[test]
fn average_precision_matches_sklearn() {
    // sklearn.metrics.average_precision_score([1,0,1,0], [.9,.8,.7,.1]) = 0.8333...
    let truth = set(4, &[0, 2]);
    assert!(close(average_precision(&[0.9, 0.8, 0.7, 0.1], &truth), 5.0 / 6.0));
    // Ties form one threshold: average_precision_score([1,0], [.5,.5]) = 0.5.
    assert!(close(average_precision(&[0.5, 0.5], &set(2, &[0])), 0.5));
    // A perfect ranking.
    assert!(close(average_precision(&[0.1, 0.9, 0.8], &set(3, &[1, 2])), 1.0));
    assert_eq!(average_precision(&[0.3, 0.2], &DrugSet::empty(2)), 0.0);
}

#[test]
fn report_aggregates_and_pools() {
    let ddi = DdiGraph::from_pairs(4, [(0, 1)], "t").unwrap();
    // Visit 1: P={0,1} (1 interacting pair of 1), G={0}. Visit 2: P={0,2,3}
    // (0 of 3 pairs), G={0,2,3}.
    let (p1, g1) = (set(4, &[0, 1]), set(4, &[0]));
    let (p2, g2) = (set(4, &[0, 2, 3]), set(4, &[0, 2, 3]));
    let report = evaluate([
        MetricInput {
            predicted: &p1,
            truth: &g1,
            scores: None,
            ddi: &ddi,
        },
        MetricInput {
            predicted: &p2,
            truth: &g2,
            scores: None,
            ddi: &ddi,
        },
    ]);
    assert_eq!(report.visits, 2);
    assert!(close(report.get("jaccard").unwrap(), (0.5 + 1.0) / 2.0));
    assert!(close(report.get("ddi_rate").unwrap(), (1.0 + 0.0) / 2.0));
    assert!(close(report.get("ddi_rate_pooled").unwrap(), 1.0 / 4.0));
    assert!(close(report.get("med_count").unwrap(), 2.5));
    assert!(close(report.get("gt_med_count").unwrap(), 2.0));
    assert!(close(report.get("overprescription_ratio").unwrap(), 1.25));
    assert_eq!(report.get("prauc"), None);
    let json = report.to_json();
    assert_eq!(json["visits"], 2);
    assert!(json["prauc"].is_null());
    for (name, def) in definitions() {
        assert!(json.get(&name).is_some(), "{name}");
        assert!(!def.is_empty());
    }
    assert!(report.render().contains("pooled DDI rate"));
}

#[test]
fn empty_report_is_undefined_not_zero() {
    let report = evaluate(std::iter::empty());
    assert_eq!(report.visits, 0);
    assert!(report.values.iter().all(|v| v.value.is_none()));
}

fn brute_pairs(p: &[usize], edges: &[(usize, usize)]) -> (usize, usize) {
    let mut inter = 0;
    let mut all = 0;
    for (i, &a) in p.iter().enumerate() {
        for &b in &p[i + 1..] {
            all += 1;
            if edges.iter().any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b)) {
                inter += 1;
            }
        }
    }
    (inter, all)
}

proptest! {
    #[test]
    fn ddi_rates_match_brute_force(
        edges in proptest::collection::vec((0usize..40, 0usize..40), 0..120),
        visits in proptest::collection::vec(proptest::collection::btree_set(0usize..40, 0..12), 1..8),
    ) {
        let edges: Vec<_> = edges.into_iter().filter(|(a, b)| a != b).collect();
        let ddi = DdiGraph::from_pairs(40, edges.iter().copied(), "t").unwrap();
        let sets: Vec<DrugSet> = visits.iter().map(|v| DrugSet::from_indices(40, v.iter().copied())).collect();
        let truth = DrugSet::empty(40);
        let report = evaluate(sets.iter().map(|p| MetricInput { predicted: p, truth: &truth, scores: None, ddi: &ddi }));
        let (mut inter, mut all, mut per_visit) = (0, 0, 0.0);
        for v in &visits {
            let list: Vec<usize> = v.iter().copied().collect();
            let (i, a) = brute_pairs(&list, &edges);
            inter += i;
            all += a;
            per_visit += if a == 0 { 0.0 } else { i as f64 / a as f64 };
        }
        let pooled = if all == 0 { 0.0 } else { inter as f64 / all as f64 };
        if edges.is_empty() {
            // No DDI graph: no rate is measured (issue #22, item 11).
            prop_assert_eq!(report.get("ddi_rate_pooled"), None);
            prop_assert_eq!(report.get("ddi_rate"), None);
        } else {
            prop_assert!((report.get("ddi_rate_pooled").unwrap() - pooled).abs() < 1e-12);
            prop_assert!((report.get("ddi_rate").unwrap() - per_visit / visits.len() as f64).abs() < 1e-12);
        }
    }
}
