//! The exact headroom of a reward under a known posterior: what the best
//! drug-by-drug decision and the best whole list would score in expectation.
//!
//! Given a posterior over a visit's ground truth `G` ([`ListPosterior`]),
//! [`expected_potential`] is `E[Phi(S; G)]` for a list `S`, exact for the
//! reward terms that read `G` only through `|S ∩ G|` and `|G|`
//! ([`OVERLAP_TERMS`]: every built-in one). Two references follow:
//! - the **drug-by-drug decision** ([`threshold_list`]): every drug whose
//!   exact marginal `P(d ∈ G)` reaches one threshold, as a classifier with
//!   perfect marginals would decide;
//! - the **best whole list** ([`best_list`]): the list that maximises
//!   `E[Phi(S; G)]` under the joint posterior, found by ascent from the best
//!   prefixes of the drugs sorted by marginal and by each mixture
//!   component's marginal (a unit's habits), toggling one drug at a time,
//!   or where no toggle improves swapping a listed drug for an unlisted
//!   one, until neither improves. The expectation is exact; the search is a
//!   local one, so its value is a lower bound on the best list's (the tests
//!   check it against brute force over every list of small worlds).
//!
//! Their difference is what list-wise decisions can gain with perfect
//! knowledge; the best list minus a learned recommender is what a learned
//! editor could still gain.

use rxalign_core::posterior::ListPosterior;
use rxalign_core::{DdiGraph, DrugSet};

use crate::reward::ListContext;
use crate::{EnvError, ListStats, Reward};

/// The reward terms whose expectation [`expected_potential`] computes
/// exactly: each reads the ground truth only through `|S ∩ G|` and `|G|`.
pub const OVERLAP_TERMS: [&str; 8] = [
    "jaccard",
    "f1",
    "precision",
    "recall",
    "ddi_rate",
    "overprescription",
    "overprescription_size",
    "refusal",
];

/// Refuses a reward with a term outside [`OVERLAP_TERMS`], naming it.
pub fn check_reward(reward: &Reward) -> Result<(), EnvError> {
    for name in reward.names() {
        if !OVERLAP_TERMS.contains(&name.as_str()) {
            return Err(EnvError::Config(format!(
                "the exact headroom needs reward terms that read the ground truth only through hits and its size ({}); `{name}` is not one of them",
                OVERLAP_TERMS.join(", ")
            )));
        }
    }
    Ok(())
}

/// `E[Phi(S; G)]` under the posterior: exact for [`OVERLAP_TERMS`] (a
/// refusal term counts no output lines here, so it adds 0).
pub fn expected_potential(
    reward: &Reward,
    posterior: &dyn ListPosterior,
    list: &DrugSet,
    ddi: &DdiGraph,
) -> f64 {
    let width = list.width();
    let inside: Vec<usize> = list.iter().collect();
    let outside: Vec<usize> = (0..width).filter(|&d| !list.contains(d)).collect();
    let ddi_pairs = ddi.interacting_pairs(list) as u32;
    let mut terms = vec![0.0; reward.len()];
    let mut total = 0.0;
    for (hits, misses, p) in posterior.overlap(list).cells() {
        // A ground truth with exactly these hits and misses stands for all
        // of them: the terms read nothing else of it.
        let truth = DrugSet::from_indices(width, inside[..hits].iter().chain(&outside[..misses]).copied());
        let stats = ListStats {
            size: inside.len() as u32,
            hits: hits as u32,
            truth_size: (hits + misses) as u32,
            ddi_pairs,
            outputs: 0,
            refusals: 0,
        };
        let ctx = ListContext {
            stats: &stats,
            list,
            truth: &truth,
            ddi,
        };
        total += p * reward.weighted_terms(&ctx, &mut terms);
    }
    total
}

/// The drugs whose marginal is at least `threshold` (and above 0).
pub fn threshold_list(marginals: &[f64], threshold: f64) -> DrugSet {
    DrugSet::from_indices(
        marginals.len(),
        (0..marginals.len()).filter(|&d| marginals[d] > 0.0 && marginals[d] >= threshold),
    )
}

/// The best whole list found and its expected potential (see the module
/// documentation). Only drugs whose marginal is at least `floor` are ever
/// added (0 considers every drug).
pub fn best_list(
    reward: &Reward,
    posterior: &dyn ListPosterior,
    ddi: &DdiGraph,
    floor: f64,
) -> (DrugSet, f64) {
    let m = posterior.marginals();
    let width = m.len();
    let value = |list: &DrugSet| expected_potential(reward, posterior, list, ddi);
    let by_marginal = |marginals: &[f64]| {
        let mut order: Vec<usize> = (0..width)
            .filter(|&d| m[d] >= floor && marginals[d] > 0.0)
            .collect();
        order.sort_by(|&a, &b| marginals[b].total_cmp(&marginals[a]).then(a.cmp(&b)));
        order
    };
    let order = by_marginal(m);
    // Starts, along the drugs by marginal and along each mixture
    // component's drugs by its own marginal: the best prefix, and the list
    // that keeps each next drug only if it raises the value.
    let mut starts: Vec<(DrugSet, f64)> = Vec::new();
    // Components below 5% of the posterior, and their drugs below 0.1, are
    // left out of the starts (they bound the search's cost, not its result:
    // the ascent still toggles every drug of `order`).
    let components = posterior.components();
    let orders = std::iter::once(order.clone()).chain(
        components
            .iter()
            .filter(|(w, _)| *w >= 0.05)
            .map(|(_, c)| by_marginal(c).into_iter().filter(|&d| c[d] >= 0.1).collect()),
    );
    for along in orders {
        let mut prefix = DrugSet::empty(width);
        let mut best = (prefix.clone(), value(&prefix));
        let mut kept = best.clone();
        for &d in &along {
            prefix.insert(d);
            let v = value(&prefix);
            if v > best.1 {
                best = (prefix.clone(), v);
            }
            kept.0.insert(d);
            let v = value(&kept.0);
            if v > kept.1 {
                kept.1 = v;
            } else {
                kept.0.remove(d);
            }
        }
        for start in [best, kept] {
            if !starts.iter().any(|(l, _)| *l == start.0) {
                starts.push(start);
            }
        }
    }
    // Ascend from the two best starts; keep the better end.
    starts.sort_by(|a, b| b.1.total_cmp(&a.1));
    starts
        .into_iter()
        .take(2)
        .map(|start| ascend(start, &order, &value))
        .fold((DrugSet::empty(width), f64::NEG_INFINITY), |a, b| {
            if b.1 > a.1 { b } else { a }
        })
}

/// Steepest ascent from `start`: the best single toggle of a drug of
/// `order`; where none improves, the best swap of a listed drug for an
/// unlisted one; until neither improves.
fn ascend(start: (DrugSet, f64), order: &[usize], value: &dyn Fn(&DrugSet) -> f64) -> (DrugSet, f64) {
    let (mut list, mut current) = start;
    loop {
        let mut step = Step::default();
        for &d in order {
            toggle(&mut list, d);
            step.consider(d, None, value(&list), current);
            toggle(&mut list, d);
        }
        if step.best.is_none() {
            let listed: Vec<usize> = list.iter().collect();
            for &out in &listed {
                list.remove(out);
                for &into in order {
                    if into == out || list.contains(into) {
                        continue;
                    }
                    list.insert(into);
                    step.consider(out, Some(into), value(&list), current);
                    list.remove(into);
                }
                list.insert(out);
            }
        }
        match step.best {
            Some((d, into, v)) => {
                toggle(&mut list, d);
                if let Some(into) = into {
                    list.insert(into);
                }
                current = v;
            }
            None => return (list, current),
        }
    }
}

/// The best improving move seen: toggle a drug, or swap it for another.
#[derive(Default)]
struct Step {
    best: Option<(usize, Option<usize>, f64)>,
}

impl Step {
    fn consider(&mut self, d: usize, into: Option<usize>, v: f64, current: f64) {
        if v > current + 1e-12 && self.best.is_none_or(|(_, _, s)| v > s) {
            self.best = Some((d, into, v));
        }
    }
}

fn toggle(list: &mut DrugSet, d: usize) {
    if !list.remove(d) {
        list.insert(d);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::Rng as _;
    use rxalign_core::posterior::Overlap;
    use rxalign_core::seeded_rng;

    use super::*;
    use crate::Episode;
    use crate::reward::RewardTerm;
    use crate::reward::{RewardConfig, RewardTermSpec};

    /// A posterior given as an explicit distribution over lists.
    struct Explicit {
        width: usize,
        lists: Vec<(DrugSet, f64)>,
        marginals: Vec<f64>,
    }

    impl Explicit {
        fn random(width: usize, seed: u64) -> Self {
            let mut rng = seeded_rng(seed, "headroom-explicit");
            let mut by_bits: HashMap<u32, f64> = HashMap::new();
            for _ in 0..12 {
                let bits: u32 = rng.random_range(0..(1 << width));
                *by_bits.entry(bits).or_default() += rng.random::<f64>();
            }
            let z: f64 = by_bits.values().sum();
            let lists: Vec<(DrugSet, f64)> = by_bits
                .into_iter()
                .map(|(bits, p)| {
                    (
                        DrugSet::from_indices(width, (0..width).filter(|d| bits >> d & 1 == 1)),
                        p / z,
                    )
                })
                .collect();
            let mut marginals = vec![0.0; width];
            for (g, p) in &lists {
                for d in g.iter() {
                    marginals[d] += p;
                }
            }
            Self {
                width,
                lists,
                marginals,
            }
        }
    }

    impl ListPosterior for Explicit {
        fn marginals(&self) -> &[f64] {
            &self.marginals
        }
        /// Each list is a component: a point mass.
        fn components(&self) -> Vec<(f64, Vec<f64>)> {
            self.lists
                .iter()
                .map(|(g, p)| {
                    (
                        *p,
                        (0..self.width)
                            .map(|d| f64::from(u8::from(g.contains(d))))
                            .collect(),
                    )
                })
                .collect()
        }
        fn overlap(&self, list: &DrugSet) -> Overlap {
            let mut o = Overlap::zeros(self.width, self.width);
            for (g, p) in &self.lists {
                let hits = g.intersection_len(list);
                o.add(hits, g.len() - hits, *p);
            }
            o
        }
    }

    fn reward(ddi: f64, over: f64) -> Reward {
        RewardConfig {
            terms: vec![
                RewardTermSpec::new("jaccard", 1.0),
                RewardTermSpec::new("ddi_rate", ddi),
                RewardTermSpec::new("overprescription", over),
            ],
        }
        .init()
        .unwrap()
    }

    #[test]
    fn expected_potential_and_best_list_equal_brute_force() {
        let width = 7;
        let ddi = DdiGraph::from_pairs(width, [(0, 1), (1, 2), (3, 4), (0, 5)], "test").unwrap();
        for seed in 0..20 {
            let post = Explicit::random(width, seed);
            for reward in [reward(0.0, 0.0), reward(1.0, 0.5), reward(3.0, 0.0)] {
                let mut brute_best = f64::NEG_INFINITY;
                for bits in 0..(1u32 << width) {
                    let list = DrugSet::from_indices(width, (0..width).filter(|d| bits >> d & 1 == 1));
                    let direct: f64 = post
                        .lists
                        .iter()
                        .map(|(g, p)| p * Episode::new(&reward, g, &ddi, list.clone(), 0).potential())
                        .sum();
                    let exact = expected_potential(&reward, &post, &list, &ddi);
                    assert!((direct - exact).abs() < 1e-12, "seed {seed} list {bits:b}");
                    brute_best = brute_best.max(direct);
                }
                let (list, v) = best_list(&reward, &post, &ddi, 0.0);
                assert!((v - expected_potential(&reward, &post, &list, &ddi)).abs() < 1e-12);
                assert!(
                    v > brute_best - 1e-9,
                    "seed {seed}: search {v} below the best list's {brute_best}"
                );
            }
        }
    }

    /// A small `icu` world over six drugs: slots with substitutes, order
    /// sets and unit habits, as the preset's posteriors have them.
    const SMALL_ICU: &str = r#"(
        unit_coded: 0.5, unit_noted: 0.4, favour: 4.0, false_coded: 0.05, false_noted: 0.02,
        acuity_noted: 0.5,
        acuity: [
            (name: "low", phrase: "low", prior: 0.5, scale: 0.6),
            (name: "high", phrase: "high", prior: 0.5, scale: 2.0),
        ],
        units: [
            (name: "A", phrase: "a", prior: 0.5, procedure: Some((icd9: "0001", name: "a"))),
            (name: "B", phrase: "b", prior: 0.5, procedure: None),
        ],
        problems: [
            (icd9: "001", name: "one", phrase: "one", prior: [0.5, 0.3], coded: 0.6, noted: 0.4),
            (icd9: "002", name: "two", phrase: "two", prior: [0.2, 0.5], coded: 0.6, noted: 0.4),
        ],
        slots: [
            (class: "x", drugs: ["D0", "D1"], base: 0.3, favoured: {"A": "D0", "B": "D1"},
             order_set: Some("001"), strength: 0.9),
            (class: "y", drugs: ["D2", "D3"], base: 0.1, favoured: {"A": "D2", "B": "D3"},
             order_set: Some("002"), strength: 0.8),
            (class: "z", drugs: ["D4"], base: 0.6),
            (class: "w", drugs: ["D5"], base: 0.2, order_set: Some("001"), strength: 0.5),
        ],
    )"#;

    #[test]
    fn the_best_list_search_finds_the_best_list_of_icu_posteriors() {
        use rxalign_core::{Sex, Vocab};
        use rxalign_data::synthetic::icu::IcuWorld;
        let width = 6;
        let mut drugs = Vocab::new();
        for d in 0..width {
            drugs.insert(format!("D{d}"), format!("drug {d}"));
        }
        let ddi = DdiGraph::from_pairs(width, [(0, 2), (1, 5), (2, 4), (3, 5)], "test").unwrap();
        let world =
            IcuWorld::from_ron(std::path::Path::new("small.ron"), SMALL_ICU, drugs, ddi.clone()).unwrap();
        let mut rng = seeded_rng(3, "headroom-icu");
        for _ in 0..60 {
            let stay = world.draw(50, Sex::Male, &mut rng);
            let post = world.posterior(&stay.evidence);
            for reward in [reward(0.0, 0.0), reward(1.0, 0.5), reward(3.0, 0.0)] {
                let brute_best = (0..(1u32 << width))
                    .map(|bits| {
                        let list = DrugSet::from_indices(width, (0..width).filter(|d| bits >> d & 1 == 1));
                        expected_potential(&reward, &post, &list, &ddi)
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                let (_, v) = best_list(&reward, &post, &ddi, 0.0);
                assert!(
                    v > brute_best - 1e-12,
                    "{:?}: search {v} below {brute_best}",
                    stay.evidence
                );
            }
        }
    }

    /// A term that reads which drugs the ground truth holds.
    #[derive(Debug)]
    struct FirstDrug;

    impl RewardTerm for FirstDrug {
        fn name(&self) -> &str {
            "first_drug"
        }
        fn definition(&self) -> &str {
            "1 when the ground truth holds drug 0"
        }
        fn potential(&self, ctx: &ListContext<'_>) -> f64 {
            f64::from(u8::from(ctx.truth.contains(0)))
        }
    }

    #[test]
    fn a_reward_outside_the_overlap_terms_is_refused() {
        assert!(check_reward(&reward(1.0, 0.5)).is_ok());
        let custom = Reward::from_terms(vec![(1.0, Box::new(FirstDrug) as Box<dyn RewardTerm>)]).unwrap();
        let e = check_reward(&custom).unwrap_err().to_string();
        assert!(e.contains("`first_drug`"), "{e}");
    }
}
