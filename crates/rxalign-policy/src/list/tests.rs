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
    let (trained, _) = sft_on_tiny(&cohort, &settings, 5, None);
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
    let (trained, _) = sft_on_tiny(&cohort, &settings, 1, None);
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
    let (weak, module) = sft_on_tiny(&cohort, &sft, 2, None);
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
        None,
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

#[test]
fn an_sft_checkpoint_resumes_to_the_same_next_loss() {
    let cohort = tiny();
    let settings = |epochs| SftSettings {
        hidden: 16,
        epochs,
        batch_size: 4,
        ..SftSettings::default()
    };
    let train = |epochs, checkpoint: Option<&std::path::Path>| {
        sft_on_tiny(&cohort, &settings(epochs), 7, checkpoint).0
    };
    let straight = train(4, None);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sft.ckpt");
    // Interrupted after epoch 2, then resumed to 4.
    let first_half = train(2, Some(&path));
    assert_eq!(first_half.log, straight.log[..2]);
    let resumed = train(4, Some(&path));
    assert_eq!(
        resumed.log, straight.log,
        "epochs 3 and 4 repeat the uninterrupted losses"
    );
    let decode = |t: &TrainedListPolicy<burn::backend::Flex>| {
        t.decode(&cohort, &[0, 1], vec![DrugSet::empty(6), DrugSet::empty(6)])
            .into_iter()
            .map(|(l, _)| l)
            .collect::<Vec<_>>()
    };
    assert_eq!(decode(&resumed), decode(&straight));
    // A finished checkpoint is not trained again.
    assert_eq!(train(4, Some(&path)).log, straight.log);
}

#[test]
fn a_grpo_checkpoint_resumes_to_the_same_next_loss() {
    let cohort = tiny();
    let features = VisitFeatures::of(&cohort);
    let sft = SftSettings {
        hidden: 16,
        epochs: 2,
        ..SftSettings::default()
    };
    let reward = rxalign_env::RewardConfig {
        terms: vec![rxalign_env::RewardTermSpec::new("jaccard", 1.0)],
    }
    .init()
    .unwrap();
    let settings = |iterations| GrpoSettings {
        iterations,
        visits: 2,
        group: 4,
        warmup: 0,
        ..GrpoSettings::default()
    };
    let empty = |_: usize, _: &mut rxalign_core::Rng| Ok(DrugSet::empty(6));
    let run = |settings: &GrpoSettings, checkpoint: Option<&std::path::Path>| {
        let (_, module) = sft_on_tiny(&cohort, &sft, 2, None);
        train_grpo(
            module,
            features.clone(),
            &cohort,
            &[0, 1],
            &empty,
            &reward,
            settings,
            8,
            3,
            checkpoint,
            &FlexDevice,
        )
        .unwrap()
        .1
    };
    // Resuming a finished checkpoint trains nothing more.
    let full = settings(6);
    let straight = run(&full, None);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grpo.ckpt");
    assert_eq!(run(&full, Some(&path)), straight);
    assert_eq!(run(&full, Some(&path)), straight);
    // Interrupted after iteration 3 of the same 6-iteration schedule.
    std::fs::remove_file(&path).unwrap();
    let mut stop_at_3 = full.clone();
    stop_at_3.stop_after = Some(3);
    let first = run(&stop_at_3, Some(&path));
    assert_eq!(first, straight[..3]);
    let resumed = run(&full, Some(&path));
    assert_eq!(
        resumed, straight,
        "iterations 4 to 6 repeat the uninterrupted losses"
    );
}

/// SFT's run starts in tests that train on corrupted ground truths only.
fn no_run_starts(_: usize, _: &mut rxalign_core::Rng) -> Result<DrugSet, String> {
    Err("these tests train on corrupted starts only".into())
}

#[test]
fn the_policy_trait_masks_samples_and_decodes_consistently() {
    let cohort = tiny();
    let features = VisitFeatures::of(&cohort);
    let policy = ListPolicyConfig::for_features(&features, 8)
        .init::<burn::backend::Flex>(&mut rxalign_core::seeded_rng(3, "t"), &FlexDevice);
    let list = DrugSet::from_indices(6, [1, 4]);
    let states = [(0usize, &list), (1usize, &list)];
    let batch = || StateBatch::<burn::backend::Flex>::new(&features, &cohort, &states, &FlexDevice);
    let logp: Vec<f32> = policy.log_probs(batch(), 1.0).into_data().to_vec().unwrap();
    let space = Action::space(6);
    for row in logp.chunks(space) {
        // Adding a listed drug and removing an unlisted one are impossible.
        for d in 0..6 {
            let invalid = if list.contains(d) { d } else { 6 + d };
            assert!(row[invalid] < -1.0e6, "slot {invalid}: {}", row[invalid]);
        }
        let total: f32 = row.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
    // Entropy lies between 0 and the log of the 7 valid actions.
    let entropy: Vec<f32> = policy.entropy(batch(), 1.0).into_data().to_vec().unwrap();
    for h in entropy {
        assert!(h > 0.0 && h <= 7f32.ln() + 1e-5, "entropy {h}");
    }
    // A cold temperature samples the greedy action; samples are valid and
    // carry their log-probability.
    let greedy = policy.greedy(batch());
    let cold = policy.sample(batch(), 1e-4, &mut rxalign_core::seeded_rng(0, "s"));
    assert_eq!(
        greedy.iter().map(|g| g.0).collect::<Vec<_>>(),
        cold.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    let mut rng = rxalign_core::seeded_rng(1, "s");
    for _ in 0..50 {
        for (row, (slot, lp)) in policy.sample(batch(), 1.0, &mut rng).into_iter().enumerate() {
            assert!(lp > -1.0e6, "sampled an invalid action");
            assert!((lp - logp[row * space + slot]).abs() < 1e-5);
        }
    }
}

/// SFT of a policy on the tiny cohort's two visits from corrupted starts.
fn sft_on_tiny(
    cohort: &rxalign_core::Cohort,
    settings: &SftSettings,
    seed: u64,
    checkpoint: Option<&std::path::Path>,
) -> (
    TrainedListPolicy<burn::backend::Flex>,
    ListPolicy<CpuTrainBackend>,
) {
    train_sft::<CpuTrainBackend>(
        cohort,
        &VisitFeatures::of(cohort),
        &[0, 1],
        settings,
        &no_run_starts,
        seed,
        checkpoint,
        &FlexDevice,
    )
    .unwrap()
}
