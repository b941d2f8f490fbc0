use burn::backend::flex::FlexDevice;
use rxalign_core::{Action, DrugSet};

use super::*;
use crate::CpuTrainBackend;
use crate::classifier::VisitFeatures;
use crate::test_support::tiny;

#[test]
fn sft_learns_to_build_and_repair_lists() {
    let cohort = tiny();
    let settings = SftSettings {
        hidden: 32,
        epochs: 150,
        batch_size: 16,
        lr: 0.01,
        ..SftSettings::default()
    };
    let (trained, _) = train_sft::<CpuTrainBackend>(&cohort, &VisitFeatures::of(&cohort), &[0, 1], &settings, 5, &FlexDevice).unwrap();
    assert!(
        trained.log.last().unwrap().1 < trained.log.first().unwrap().1 * 0.2,
        "{:?}",
        trained.log
    );
    // From the empty list it adds the prescribed drugs in index order and stops.
    let empty = vec![DrugSet::empty(6), DrugSet::empty(6)];
    let decoded = trained.decode(&cohort, &[0, 1], empty);
    assert_eq!(decoded[0].0.to_vec(), vec![0, 2]);
    assert_eq!(decoded[1].0.to_vec(), vec![3, 4, 5]);
    let actions: Vec<Action> = decoded[0].1.iter().map(|s| s.action).collect();
    assert_eq!(actions, [Action::Add(0), Action::Add(2), Action::Stop]);
    assert!(
        decoded[0]
            .1
            .iter()
            .all(|s| s.probability > 0.5 && s.probability <= 1.0)
    );
    // From a wrong list it removes the extra drug and adds the missing one.
    let wrong = vec![DrugSet::from_indices(6, [0, 5])];
    let repaired = trained.decode(&cohort, &[0], wrong);
    assert_eq!(repaired[0].0.to_vec(), vec![0, 2]);
}

#[test]
fn decoding_never_takes_an_invalid_action_and_respects_the_budget() {
    let cohort = tiny();
    let settings = SftSettings {
        hidden: 8,
        epochs: 1,
        budget: 4,
        ..SftSettings::default()
    };
    let (trained, _) = train_sft::<CpuTrainBackend>(&cohort, &VisitFeatures::of(&cohort), &[0, 1], &settings, 1, &FlexDevice).unwrap();
    for (list, steps) in trained.decode(&cohort, &[0, 1], vec![DrugSet::full(6), DrugSet::empty(6)]) {
        assert!(steps.len() <= 4);
        let mut replay = list.clone();
        for s in steps.iter().rev() {
            match s.action {
                Action::Add(d) => assert!(replay.remove(d), "an add of a listed drug"),
                Action::Remove(d) => assert!(replay.insert(d), "a remove of an unlisted drug"),
                Action::Stop => {}
            }
        }
    }
}

#[test]
fn grpo_improves_a_weak_policy_and_its_kl_starts_at_zero() {
    use rxalign_env::{RewardConfig, RewardTermSpec};
    let cohort = tiny();
    let sft = SftSettings {
        hidden: 16,
        epochs: 2,
        budget: 8,
        ..SftSettings::default()
    };
    let (weak, module) = train_sft::<CpuTrainBackend>(&cohort, &VisitFeatures::of(&cohort), &[0, 1], &sft, 2, &FlexDevice).unwrap();
    let reward = RewardConfig {
        terms: vec![RewardTermSpec::new("jaccard", 1.0)],
    }
    .init()
    .unwrap();
    let jaccard = |p: &TrainedListPolicy<burn::backend::Flex>| {
        let decoded = p.decode(&cohort, &[0, 1], vec![DrugSet::empty(6), DrugSet::empty(6)]);
        decoded
            .iter()
            .zip([0, 1])
            .map(|((l, _), v)| rxalign_core::metrics::jaccard(l, &cohort.visits[v].drugs))
            .sum::<f64>()
            / 2.0
    };
    let before = jaccard(&weak);
    let settings = GrpoSettings {
        iterations: 40,
        visits: 4,
        group: 8,
        lr: 0.02,
        warmup: 2,
        kl: 0.0,
        ..GrpoSettings::default()
    };
    let empty = |_: usize, _: &mut rxalign_core::Rng| Ok(DrugSet::empty(6));
    let (aligned, log) = train_grpo(
        module,
        weak.features,
        &cohort,
        &[0, 1],
        &empty,
        &reward,
        &settings,
        8,
        9,
        &FlexDevice,
    )
    .unwrap();
    assert!(
        log[0].kl.abs() < 1e-6,
        "the policy starts as its own reference: KL {}",
        log[0].kl
    );
    let after = jaccard(&aligned);
    let (first, last) = (
        log[..5].iter().map(|l| l.mean_outcome).sum::<f64>(),
        log[35..].iter().map(|l| l.mean_outcome).sum::<f64>(),
    );
    assert!(last > first, "mean outcome {first} -> {last}");
    assert!(after >= before, "greedy Jaccard {before} -> {after}");
}
