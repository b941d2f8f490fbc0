use proptest::prelude::*;
use rxalign_core::metrics::{ddi_rate, f1, jaccard, precision, recall};
use rxalign_core::{Action, DdiGraph, DrugSet};

use super::*;
use crate::{EnvError, Episode, ListStats};

fn all_terms() -> RewardConfig {
    RewardConfig {
        terms: [
            "jaccard",
            "f1",
            "precision",
            "recall",
            "ddi_rate",
            "overprescription",
            "overprescription_size",
            "refusal",
        ]
        .iter()
        .map(|k| RewardTermSpec::new(k, 1.0))
        .collect(),
    }
}

fn set(width: usize, ix: &[usize]) -> DrugSet {
    DrugSet::from_indices(width, ix.iter().copied())
}

#[test]
fn hand_worked_potentials() {
    // S = {0,1,2}, G = {1,2,3,4}; 0-1 interact. hits 2, |S∪G| 5.
    let ddi = DdiGraph::from_pairs(6, [(0, 1)], "t").unwrap();
    let truth = set(6, &[1, 2, 3, 4]);
    let reward = all_terms().init().unwrap();
    let ep = Episode::new(&reward, &truth, &ddi, set(6, &[0, 1, 2]), 10);
    let t = ep.terms();
    let expect = [
        0.4,
        2.0 * 2.0 / 7.0,
        2.0 / 3.0,
        0.5,
        -1.0 / 3.0,
        -1.0 / 4.0,
        0.0,
        0.0,
    ];
    for ((name, got), want) in reward.names().iter().zip(t).zip(expect) {
        assert!((got - want).abs() < 1e-12, "{name}: {got} against {want}");
    }
    // Oversized list: S = all 6, G = {1}: size excess (6-1)/1, false positives 5/1.
    let truth = set(6, &[1]);
    let ep = Episode::new(&reward, &truth, &ddi, DrugSet::full(6), 10);
    assert_eq!(ep.terms()[5], -5.0);
    assert_eq!(ep.terms()[6], -5.0);
    // Empty list and empty truth: everything is 0.
    let empty = DrugSet::empty(6);
    let ep = Episode::new(&reward, &empty, &ddi, empty.clone(), 10);
    assert!(ep.terms().iter().all(|&x| x == 0.0));
}

#[test]
fn step_rewards_are_potential_differences_with_breakdown() {
    let ddi = DdiGraph::from_pairs(4, [(0, 1)], "t").unwrap();
    let truth = set(4, &[0, 2]);
    let reward = RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("ddi_rate", 0.5),
        ],
    }
    .init()
    .unwrap();
    let mut ep = Episode::new(&reward, &truth, &ddi, set(4, &[0]), 5);
    assert_eq!(ep.start_potential(), 0.5);
    let r = ep.step(Action::Add(1)).unwrap(); // S={0,1}: J=1/3, DDI rate 1 -> Phi = 1/3 - 0.5
    assert!((r.total - (1.0 / 3.0 - 0.5 - 0.5)).abs() < 1e-12);
    assert!((ep.last_terms()[0] - (1.0 / 3.0 - 0.5)).abs() < 1e-12);
    assert!((ep.last_terms()[1] + 0.5).abs() < 1e-12);
    let r = ep.step(Action::Remove(1)).unwrap();
    assert!((r.total - (0.5 - (1.0 / 3.0 - 0.5))).abs() < 1e-12);
    ep.step(Action::Add(2)).unwrap();
    assert_eq!(ep.potential(), 1.0);
    let r = ep.step(Action::Stop).unwrap();
    assert!(r.done && r.total == 0.0 && !ep.is_truncated());
    assert!(ep.step(Action::Stop).is_err());
    assert!((ep.outcome_reward() - 0.5).abs() < 1e-12);
}

#[test]
fn masks_invalid_actions_and_budget() {
    let ddi = DdiGraph::empty(3, "none");
    let truth = set(3, &[0]);
    let reward = RewardConfig::flame().init().unwrap();
    let mut ep = Episode::new(&reward, &truth, &ddi, set(3, &[1]), 2);
    assert_eq!(ep.mask(), vec![true, false, true, false, true, false, true]);
    assert!(ep.step(Action::Add(1)).is_err());
    assert!(ep.step(Action::Remove(0)).is_err());
    assert!(ep.step(Action::Add(7)).is_err());
    ep.step(Action::Add(0)).unwrap();
    let r = ep.step(Action::Remove(1)).unwrap();
    assert!(r.done && ep.is_truncated());
    assert!(matches!(ep.step(Action::Stop), Err(EnvError::Finished)));
}

#[test]
fn refusals_are_charged() {
    let ddi = DdiGraph::empty(3, "none");
    let truth = set(3, &[0]);
    let reward = RewardConfig::flame().init().unwrap();
    let mut ep = Episode::new(&reward, &truth, &ddi, DrugSet::empty(3), 5);
    ep.step(Action::Add(0)).unwrap(); // Jaccard 1, refusal 0/1
    let r = ep.refuse().unwrap(); // refusal rate 1/2, weight 0.2
    assert!((r.total + 0.1).abs() < 1e-12, "{}", r.total);
    assert_eq!(ep.stats().outputs, 2);
}

#[test]
fn unknown_and_duplicate_terms_are_errors() {
    let err = RewardConfig {
        terms: vec![RewardTermSpec::new("jacard", 1.0)],
    }
    .init()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("unknown reward term kind `jacard`") && err.contains("jaccard, f1"),
        "{err}"
    );
    let twice = RewardConfig {
        terms: vec![RewardTermSpec::new("f1", 1.0), RewardTermSpec::new("f1", 2.0)],
    };
    assert!(twice.init().unwrap_err().to_string().contains("twice"));
    let mut bad = RewardTermSpec::new("f1", 1.0);
    bad.params = serde_json::json!({"beta": 2});
    assert!(
        RewardConfig { terms: vec![bad] }
            .init()
            .unwrap_err()
            .to_string()
            .contains("unknown field `beta`")
    );
}

#[derive(Debug)]
struct ListLengthSquared;
impl RewardTerm for ListLengthSquared {
    fn name(&self) -> &str {
        "length_squared"
    }
    fn definition(&self) -> &str {
        "-(|S|^2), read from the list itself"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        -((ctx.list.len() * ctx.list.len()) as f64)
    }
}

#[test]
fn a_researchers_term_registers_beside_the_builtins() {
    let mut registry = registry();
    registry
        .register("length_squared", |_, _| {
            Ok(Box::new(ListLengthSquared) as Box<dyn RewardTerm>)
        })
        .unwrap();
    let config = RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("length_squared", 0.1),
        ],
    };
    let reward = config.init_with(&registry).unwrap();
    let ddi = DdiGraph::empty(4, "none");
    let truth = set(4, &[0]);
    let ep = Episode::new(&reward, &truth, &ddi, set(4, &[0, 1]), 3);
    assert!((ep.potential() - (0.5 - 0.4)).abs() < 1e-12);
}

fn random_actions() -> impl Strategy<Value = Vec<(bool, usize)>> {
    proptest::collection::vec((any::<bool>(), 0usize..70), 0..60)
}

proptest! {
    #[test]
    fn incremental_potentials_equal_recomputation_and_steps_sum_to_outcome(
        edges in proptest::collection::vec((0usize..70, 0usize..70), 0..300),
        truth in proptest::collection::btree_set(0usize..70, 0..15),
        start in proptest::collection::btree_set(0usize..70, 0..15),
        actions in random_actions(),
        refusals in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let width = 70;
        let ddi = DdiGraph::from_pairs(width, edges.into_iter().filter(|(a, b)| a != b), "t").unwrap();
        let truth = DrugSet::from_indices(width, truth);
        let reward = all_terms().init().unwrap();
        let mut ep = Episode::new(&reward, &truth, &ddi, DrugSet::from_indices(width, start), 1000);
        let mut sum = 0.0;
        for (i, (add, d)) in actions.into_iter().enumerate() {
            let r = if refusals[i] && i % 5 == 0 {
                ep.refuse().unwrap()
            } else {
                let action = if ep.list().contains(d) && !add { Action::Remove(d) } else if !ep.list().contains(d) { Action::Add(d) } else { Action::Remove(d) };
                ep.step(action).unwrap()
            };
            sum += r.total;
            // Every incremental statistic equals a recomputation from the list.
            let fresh = ListStats::of(ep.list(), &truth, &ddi);
            prop_assert_eq!(ep.stats().size, fresh.size);
            prop_assert_eq!(ep.stats().hits, fresh.hits);
            prop_assert_eq!(ep.stats().ddi_pairs, fresh.ddi_pairs);
            // The potentials equal the metric definitions of core.
            let list = ep.list();
            let t = ep.terms();
            prop_assert!((t[0] - jaccard(list, &truth)).abs() < 1e-12);
            prop_assert!((t[1] - f1(list, &truth)).abs() < 1e-12);
            prop_assert!((t[2] - precision(list, &truth)).abs() < 1e-12);
            prop_assert!((t[3] - recall(list, &truth)).abs() < 1e-12);
            prop_assert!((t[4] + ddi_rate(list, &ddi)).abs() < 1e-12);
            let fp = list.len() - list.intersection_len(&truth);
            prop_assert!((t[5] + fp as f64 / truth.len().max(1) as f64).abs() < 1e-12);
            // The per-term step rewards add up to the step reward.
            prop_assert!((ep.last_terms().iter().sum::<f64>() - r.total).abs() < 1e-12);
        }
        // Telescoping: the step rewards sum to Phi(S_T) - Phi(S_0), up to
        // floating-point rounding.
        prop_assert!((sum - ep.outcome_reward()).abs() < 1e-9, "{} against {}", sum, ep.outcome_reward());
    }
}
