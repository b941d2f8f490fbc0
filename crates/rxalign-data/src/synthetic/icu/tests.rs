use std::collections::HashMap;
use std::path::Path;

use rxalign_core::posterior::ListPosterior;
use rxalign_core::{DdiGraph, DrugSet, Sex, Vocab, seeded_rng};

use super::*;

/// Two units, two problems, three slots over five drugs (the last in no
/// slot): small enough to enumerate every latent state and every list.
const TINY: &str = r#"(
    unit_coded: 0.6, unit_noted: 0.3, favour: 3.0, false_coded: 0.1, false_noted: 0.05,
    acuity_noted: 0.3,
    acuity: [
        (name: "low", phrase: "low", prior: 0.6, scale: 0.7),
        (name: "high", phrase: "high", prior: 0.4, scale: 1.5),
    ],
    units: [
        (name: "A", phrase: "unit a", prior: 0.7, procedure: Some((icd9: "0001", name: "a procedure"))),
        (name: "B", phrase: "unit b", prior: 0.3, procedure: None),
    ],
    problems: [
        (icd9: "001", name: "one", phrase: "one", prior: [0.4, 0.8], coded: 0.5, noted: 0.4),
        (icd9: "002", name: "two", phrase: "two", prior: [0.2, 0.1], coded: 0.7, noted: 0.2),
    ],
    slots: [
        (class: "x", drugs: ["D0", "D1"], base: 0.1, unit_base: {"B": 0.3}, favoured: {"A": "D0", "B": "D1"},
         order_set: Some("001"), strength: 0.8),
        (class: "y", drugs: ["D2"], base: 0.2, order_set: Some("002"), strength: 0.9),
        (class: "z", drugs: ["D3"], base: 0.5, unit_base: {"A": 0.25}),
    ],
)"#;

pub(crate) fn tiny_world() -> IcuWorld {
    let mut drugs = Vocab::new();
    for d in 0..5 {
        drugs.insert(format!("D{d}"), format!("drug {d}"));
    }
    let ddi = DdiGraph::from_pairs(5, [(0, 2), (2, 3)], "test").unwrap();
    IcuWorld::from_ron(Path::new("tiny.ron"), TINY, drugs, ddi).unwrap()
}

/// `P(G | evidence)` by enumerating every unit, problem state and slot
/// outcome.
pub(crate) fn brute_force(world: &IcuWorld, e: &Evidence) -> HashMap<Vec<usize>, f64> {
    let like = |hit: bool, p: f64| if hit { p } else { 1.0 - p };
    let mut out: HashMap<Vec<usize>, f64> = HashMap::new();
    let k = world.problems.len();
    for (state, st) in world.states.iter().enumerate() {
        let (u, unit) = (st.unit, &world.units[st.unit]);
        for h in 0..(1usize << k) {
            let present: Vec<bool> = (0..k).map(|i| h >> i & 1 == 1).collect();
            let mut p = st.prior;
            p *= match (e.unit_coded, unit.procedure) {
                (Some(c), _) if c == u => world.unit_coded,
                (Some(_), _) => 0.0,
                (None, Some(_)) => 1.0 - world.unit_coded,
                (None, None) => 1.0,
            };
            p *= match e.unit_noted {
                Some(c) if c == u => world.unit_noted,
                Some(_) => 0.0,
                None => 1.0 - world.unit_noted,
            };
            p *= match e.acuity_noted {
                Some(a) if a == st.acuity => world.acuity_noted,
                Some(_) => 0.0,
                None => 1.0 - world.acuity_noted,
            };
            for (i, pr) in world.problems.iter().enumerate() {
                p *= like(present[i], pr.prior[state]);
                let (c, n) = if present[i] {
                    (pr.coded, pr.noted)
                } else {
                    (world.false_coded, world.false_noted)
                };
                p *= like(e.coded[i], c) * like(e.noted[i], n);
            }
            // Every slot outcome: none, or one of its drugs.
            let mut lists: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), p)];
            for s in &world.slots {
                let on = s.ordered(state, s.order_set.is_some_and(|(k, _)| present[k]));
                let mut next = Vec::new();
                for (list, q) in &lists {
                    next.push((list.clone(), q * (1.0 - on)));
                    for (&d, &c) in s.drugs.iter().zip(&s.choice[u]) {
                        let mut l = list.clone();
                        l.push(d);
                        next.push((l, q * on * c));
                    }
                }
                lists = next;
            }
            for (mut list, q) in lists {
                list.sort_unstable();
                *out.entry(list).or_default() += q;
            }
        }
    }
    let z: f64 = out.values().sum();
    out.values_mut().for_each(|p| *p /= z);
    out
}

fn every_evidence(world: &IcuWorld) -> Vec<Evidence> {
    let mut out = Vec::new();
    for unit_coded in [None, Some(0)] {
        for unit_noted in [None, Some(0), Some(1)] {
            if unit_coded.is_some() && unit_noted.is_some() && unit_coded != unit_noted {
                continue; // impossible: one stay is on one unit
            }
            for (acuity_noted, bits) in [None, Some(0), Some(1)]
                .into_iter()
                .flat_map(|a| (0..16usize).map(move |b| (a, b)))
            {
                out.push(Evidence {
                    unit_coded,
                    unit_noted,
                    acuity_noted,
                    coded: vec![bits & 1 == 1, bits & 2 == 2],
                    noted: vec![bits & 4 == 4, bits & 8 == 8],
                });
            }
        }
    }
    assert_eq!(world.problems.len(), 2);
    out
}

#[test]
fn posteriors_equal_brute_force_enumeration() {
    let world = tiny_world();
    for e in every_evidence(&world) {
        let exact = brute_force(&world, &e);
        let post = world.posterior(&e);
        for d in 0..5 {
            let m: f64 = exact.iter().filter(|(l, _)| l.contains(&d)).map(|(_, p)| p).sum();
            assert!(
                (post.marginals()[d] - m).abs() < 1e-12,
                "{e:?} drug {d}: {} vs {m}",
                post.marginals()[d]
            );
        }
        for bits in 0..32usize {
            let list = DrugSet::from_indices(5, (0..5).filter(|d| bits >> d & 1 == 1));
            let overlap = post.overlap(&list);
            assert!((overlap.total() - 1.0).abs() < 1e-12);
            let mut want: HashMap<(usize, usize), f64> = HashMap::new();
            for (g, p) in &exact {
                let hits = g.iter().filter(|d| list.contains(**d)).count();
                *want.entry((hits, g.len() - hits)).or_default() += p;
            }
            for h in 0..=3 {
                for m in 0..=3 {
                    let w = want.get(&(h, m)).copied().unwrap_or(0.0);
                    assert!(
                        (overlap.get(h, m) - w).abs() < 1e-12,
                        "{e:?} list {bits:b} ({h}, {m})"
                    );
                }
            }
        }
    }
}

#[test]
fn draws_follow_the_model() {
    // The empirical rate of each drug over many stays with no evidence
    // filter equals the prior marginal (the posterior given nothing is not
    // available, so compare with the enumerated prior over latent states).
    let world = tiny_world();
    let mut rng = seeded_rng(7, "icu-draws");
    let n = 40_000;
    let mut counts = [0usize; 5];
    let mut posterior_mean = [0.0; 5];
    for _ in 0..n {
        let stay = world.draw(60, Sex::Female, &mut rng);
        for d in stay.drugs.iter() {
            counts[d] += 1;
        }
        let post = world.posterior(&stay.evidence);
        for (m, p) in posterior_mean.iter_mut().zip(post.marginals()) {
            *m += p / n as f64;
        }
        assert!(world.problems.iter().all(|_| stay.evidence.coded.len() == 2));
    }
    // The mean posterior marginal equals the frequency (the law of total
    // probability), within binomial noise.
    for d in 0..5 {
        let f = counts[d] as f64 / n as f64;
        let sd = (f * (1.0 - f) / n as f64).sqrt().max(1e-9);
        assert!(
            (f - posterior_mean[d]).abs() < 5.0 * sd + 1e-9,
            "drug {d}: {f} vs {}",
            posterior_mean[d]
        );
    }
    assert_eq!(counts[4], 0, "a drug of no slot is never given");
}

#[test]
fn the_embedded_world_loads() {
    let world = IcuWorld::embedded().unwrap();
    assert_eq!(world.units.len(), 5);
    assert!(world.slots.len() > 40);
}

#[test]
fn bad_worlds_are_refused_with_the_reason() {
    let mut drugs = Vocab::new();
    drugs.insert("D0", "d");
    let ddi = DdiGraph::empty(1, "test");
    let bad = TINY.replace("prior: 0.3", "prior: 0.4");
    let e = IcuWorld::from_ron(Path::new("w.ron"), &bad, drugs.clone(), ddi.clone()).unwrap_err();
    assert!(e.to_string().contains("sum to"), "{e}");
    let e = IcuWorld::from_ron(Path::new("w.ron"), TINY, drugs, ddi).unwrap_err();
    assert!(
        e.to_string().contains("D1") && e.to_string().contains("formulary"),
        "{e}"
    );
}
