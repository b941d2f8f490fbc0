//! The shared loops on the list policy (`set_encoder`) of a tiny cohort.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::module::AutodiffModule;
use rxalign_core::{Action, Cohort, DrugSet, Rng, SplitName, seeded_rng};
use rxalign_env::{Reward, RewardConfig, RewardTermSpec};
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::family::{ActMode, Effect, PolicyFamily, State};
use rxalign_policy::features::VisitFeatures;
use rxalign_policy::test_support::tiny;
use rxalign_set_encoder::{ListPolicy, SetEncoder, SetEncoderConfig};

use crate::TrainError;
use crate::episodes::{EpisodeResult, Episodes};
use crate::grpo::{GrpoJob, GrpoSettings, train_grpo};
use crate::observer::{EvalPlan, EvalSet, FinalList, ObserverError, StepLog, TrainObserver};
use crate::sft::{SftJob, SftSettings, train_sft};

/// Keeps every step's log; scores evaluations by their mean list size.
#[derive(Default)]
pub(crate) struct Keep(pub(crate) Vec<StepLog>);

impl TrainObserver for Keep {
    fn evaluate(
        &mut self,
        _: usize,
        _: SplitName,
        lists: &[FinalList],
    ) -> Result<BTreeMap<String, Option<f64>>, ObserverError> {
        let size = lists.iter().map(|f| f.list.len() as f64).sum::<f64>() / lists.len() as f64;
        Ok([("list_size".to_string(), Some(size))].into_iter().collect())
    }

    fn step(&mut self, log: &StepLog, _: usize) -> Result<(), ObserverError> {
        self.0.push(log.clone());
        Ok(())
    }
}

fn jaccard_reward() -> Reward {
    RewardConfig {
        terms: vec![RewardTermSpec::new("jaccard", 1.0)],
    }
    .init()
    .unwrap()
}

fn family(cohort: &Cohort, hidden: usize) -> SetEncoder {
    SetEncoderConfig {
        hidden,
        budget: 8,
        ..SetEncoderConfig::default()
    }
    .build(&VisitFeatures::of(cohort))
    .unwrap()
}

fn no_run_starts(_: usize, _: &mut Rng) -> Result<DrugSet, String> {
    Err("these tests train on corrupted starts only".into())
}

fn empty_starts(_: usize, _: &mut Rng) -> Result<DrugSet, String> {
    Ok(DrugSet::empty(6))
}

/// SFT of the family on the tiny cohort's two visits from corrupted starts.
fn sft(
    family: &SetEncoder,
    cohort: &Cohort,
    reward: &Reward,
    settings: &SftSettings,
    seed: u64,
    checkpoint: Option<&Path>,
) -> (ListPolicy<CpuTrainBackend>, Vec<StepLog>) {
    let mut keep = Keep::default();
    let eval = EvalPlan::default();
    let job = sft_job(cohort, reward, settings, seed, checkpoint, &eval);
    let model = train_sft::<_, CpuTrainBackend>(family, &job, &mut keep, &FlexDevice).unwrap();
    (model, keep.0)
}

/// An SFT job on the tiny cohort's two visits from corrupted starts.
fn sft_job<'a>(
    cohort: &'a Cohort,
    reward: &'a Reward,
    settings: &'a SftSettings,
    seed: u64,
    checkpoint: Option<&'a Path>,
    eval: &'a EvalPlan,
) -> SftJob<'a> {
    SftJob {
        cohort,
        reward,
        train: &[0, 1],
        settings,
        starts: &no_run_starts,
        budget: 8,
        seed,
        checkpoint,
        eval,
    }
}

fn greedy(
    family: &SetEncoder,
    model: &ListPolicy<Flex>,
    cohort: &Cohort,
    reward: &Reward,
    budget: usize,
    starts: Vec<(usize, DrugSet)>,
) -> Vec<EpisodeResult<usize>> {
    Episodes {
        cohort,
        reward,
        budget,
        mode: ActMode::Greedy,
        max_batch: Some(512),
        record: None,
    }
    .run(family, model, starts, &mut seeded_rng(0, "g"), &FlexDevice)
    .unwrap()
}

fn losses(log: &[StepLog], key: &str) -> Vec<f64> {
    log.iter().map(|l| l.train[key]).collect()
}

#[test]
fn sft_learns_to_build_and_repair_lists() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 32);
    let settings = SftSettings {
        epochs: 150,
        batch_size: 16,
        lr: 0.01,
        ..SftSettings::default()
    };
    let (model, log) = sft(&family, &cohort, &reward, &settings, 5, None);
    let loss = losses(&log, "loss/sft");
    assert!(loss[149] < loss[0] * 0.2, "{loss:?}");
    // From the empty list it adds the prescribed drugs in index order and stops.
    let model = model.valid();
    let empty = vec![(0, DrugSet::empty(6)), (1, DrugSet::empty(6))];
    let decoded = greedy(&family, &model, &cohort, &reward, 8, empty);
    assert_eq!(decoded[0].final_list.to_vec(), vec![0, 2]);
    assert_eq!(decoded[1].final_list.to_vec(), vec![3, 4, 5]);
    let actions: Vec<Effect> = decoded[0].steps.iter().map(|s| s.effect.clone()).collect();
    assert_eq!(
        actions,
        [
            Effect::Act(Action::Add(0)),
            Effect::Act(Action::Add(2)),
            Effect::Act(Action::Stop)
        ]
    );
    assert!(decoded[0].steps.iter().all(|s| {
        let p = f64::from(s.acted.logp().exp());
        p > 0.5 && p <= 1.0
    }));
    assert!((decoded[0].outcome - 1.0).abs() < 1e-12, "Jaccard 0 -> 1");
    // From a wrong list it removes the extra drug and adds the missing one.
    let repaired = greedy(
        &family,
        &model,
        &cohort,
        &reward,
        8,
        vec![(0, DrugSet::from_indices(6, [0, 5]))],
    );
    assert_eq!(repaired[0].final_list.to_vec(), vec![0, 2]);
}

#[test]
fn episodes_never_take_an_invalid_action_and_respect_the_budget() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 8);
    let settings = SftSettings {
        epochs: 1,
        ..SftSettings::default()
    };
    let (model, _) = sft(&family, &cohort, &reward, &settings, 1, None);
    let starts = vec![(0, DrugSet::full(6)), (1, DrugSet::empty(6))];
    for r in greedy(&family, &model.valid(), &cohort, &reward, 4, starts) {
        assert!(r.steps.len() <= 4);
        assert!(
            r.steps.iter().all(|s| !s.refused),
            "masked actions are never taken"
        );
        let mut replay = r.final_list.clone();
        for s in r.steps.iter().rev() {
            match s.effect {
                Effect::Act(Action::Add(d)) => assert!(replay.remove(d), "an add of a listed drug"),
                Effect::Act(Action::Remove(d)) => assert!(replay.insert(d), "a remove of an unlisted drug"),
                _ => {}
            }
        }
    }
}

fn grpo_job<'a>(
    cohort: &'a Cohort,
    reward: &'a Reward,
    settings: &'a GrpoSettings,
    checkpoint: Option<&'a Path>,
    eval: &'a EvalPlan,
) -> GrpoJob<'a> {
    GrpoJob {
        cohort,
        reward,
        train: &[0, 1],
        starts: &empty_starts,
        settings,
        budget: 8,
        seed: 9,
        checkpoint,
        eval,
    }
}

#[test]
fn grpo_improves_a_weak_policy_and_its_kl_starts_at_zero() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let sft_settings = SftSettings {
        epochs: 2,
        ..SftSettings::default()
    };
    let (weak, _) = sft(&family, &cohort, &reward, &sft_settings, 2, None);
    let jaccard = |model: &ListPolicy<Flex>| {
        let starts = vec![(0, DrugSet::empty(6)), (1, DrugSet::empty(6))];
        greedy(&family, model, &cohort, &reward, 8, starts)
            .iter()
            .map(|r| rxalign_core::metrics::jaccard(&r.final_list, &cohort.visits[r.visit].drugs))
            .sum::<f64>()
            / 2.0
    };
    let before = jaccard(&weak.valid());
    let settings = GrpoSettings {
        iterations: 40,
        visits: 4,
        group: 8,
        lr: 0.02,
        warmup: 2,
        kl: 0.0,
        ..GrpoSettings::default()
    };
    let eval = EvalPlan {
        every: 10,
        sets: vec![EvalSet {
            split: SplitName::Val,
            visits: vec![0, 1],
            starts: vec![DrugSet::empty(6), DrugSet::empty(6)],
        }],
    };
    let mut keep = Keep::default();
    let job = grpo_job(&cohort, &reward, &settings, None, &eval);
    let aligned = train_grpo::<_, CpuTrainBackend>(&family, weak, &job, &mut keep, &FlexDevice).unwrap();
    let log = keep.0;
    assert!(
        log[0].train["kl"].abs() < 1e-6 && log[0].train["kl/k3"].abs() < 1e-6,
        "the policy starts as its own reference: {:?}",
        log[0].train
    );
    let outcome = losses(&log, "rollout/reward/outcome");
    let (first, last) = (
        outcome[..5].iter().sum::<f64>(),
        outcome[35..].iter().sum::<f64>(),
    );
    assert!(last > first, "mean outcome {first} -> {last}");
    assert!(
        jaccard(&aligned) >= before,
        "greedy Jaccard {before} -> {}",
        jaccard(&aligned)
    );
    // Evaluated every 10 iterations, on the evaluation visits.
    let evaluated: Vec<usize> = log
        .iter()
        .filter(|l| !l.evals.is_empty())
        .map(|l| l.step)
        .collect();
    assert_eq!(evaluated, [10, 20, 30, 40]);
    assert_eq!(log[9].evals[0].split, SplitName::Val);
}

#[test]
fn an_sft_checkpoint_resumes_to_the_same_next_loss() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let settings = |epochs| SftSettings {
        epochs,
        batch_size: 4,
        ..SftSettings::default()
    };
    let train =
        |epochs, checkpoint: Option<&Path>| sft(&family, &cohort, &reward, &settings(epochs), 7, checkpoint);
    let (straight_model, straight) = train(4, None);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sft.ckpt");
    // Interrupted after epoch 2, then resumed to 4: the restored epochs are
    // reported again, then the same epochs follow.
    let (_, first_half) = train(2, Some(&path));
    assert_eq!(first_half, straight[..2]);
    let (resumed_model, resumed) = train(4, Some(&path));
    assert_eq!(
        resumed, straight,
        "epochs 3 and 4 repeat the uninterrupted losses"
    );
    let decode = |m: &ListPolicy<CpuTrainBackend>| {
        let starts = vec![(0, DrugSet::empty(6)), (1, DrugSet::empty(6))];
        greedy(&family, &m.valid(), &cohort, &reward, 8, starts)
            .into_iter()
            .map(|r| r.final_list)
            .collect::<Vec<_>>()
    };
    assert_eq!(decode(&resumed_model), decode(&straight_model));
    // A finished checkpoint is not trained again.
    assert_eq!(train(4, Some(&path)).1, straight);
}

#[test]
fn a_grpo_checkpoint_resumes_to_the_same_next_loss() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let sft_settings = SftSettings {
        epochs: 2,
        ..SftSettings::default()
    };
    let settings = |iterations| GrpoSettings {
        iterations,
        visits: 2,
        group: 4,
        warmup: 0,
        ..GrpoSettings::default()
    };
    let run = |settings: &GrpoSettings, checkpoint: Option<&Path>| {
        let (start, _) = sft(&family, &cohort, &reward, &sft_settings, 2, None);
        let mut keep = Keep::default();
        let eval = EvalPlan::default();
        let job = grpo_job(&cohort, &reward, settings, checkpoint, &eval);
        train_grpo::<_, CpuTrainBackend>(&family, start, &job, &mut keep, &FlexDevice).unwrap();
        keep.0
    };
    let full = settings(6);
    let straight = run(&full, None);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grpo.ckpt");
    assert_eq!(run(&full, Some(&path)), straight);
    // Resuming a finished checkpoint trains nothing more.
    assert_eq!(run(&full, Some(&path)), straight);
    // Interrupted after iteration 3 of the same 6-iteration schedule.
    std::fs::remove_file(&path).unwrap();
    let mut stop_at_3 = full.clone();
    stop_at_3.stop_after = Some(3);
    assert_eq!(run(&stop_at_3, Some(&path)), straight[..3]);
    assert_eq!(
        run(&full, Some(&path)),
        straight,
        "iterations 4 to 6 repeat the uninterrupted run"
    );
}

#[test]
fn a_diverging_grpo_run_fails_with_what_to_try() {
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let (start, _) = sft(
        &family,
        &cohort,
        &reward,
        &SftSettings {
            epochs: 1,
            ..SftSettings::default()
        },
        2,
        None,
    );
    let settings = GrpoSettings {
        iterations: 20,
        visits: 2,
        group: 4,
        warmup: 0,
        lr: 1e30,
        grad_norm: 1e30,
        kl: 0.0,
        ..GrpoSettings::default()
    };
    let eval = EvalPlan::default();
    let job = grpo_job(&cohort, &reward, &settings, None, &eval);
    let e = train_grpo::<_, CpuTrainBackend>(&family, start, &job, &mut Keep::default(), &FlexDevice)
        .unwrap_err();
    assert!(matches!(e, TrainError::Diverged { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("GRPO diverged at iteration") && message.contains("smaller `lr`"),
        "{message}"
    );
}

#[test]
fn exact_and_k3_kl_agree_in_expectation() {
    use burn::prelude::*;
    let cohort = tiny();
    let family = family(&cohort, 8);
    let device = FlexDevice;
    // Two different policies: KL(π || π_ref) is clearly positive.
    let policy: ListPolicy<Flex> = family.init(&mut seeded_rng(1, "kl-policy"), &device).unwrap();
    let reference: ListPolicy<Flex> = family.init(&mut seeded_rng(2, "kl-reference"), &device).unwrap();
    let list = DrugSet::from_indices(6, [1, 4]);
    let states: Vec<State<'_>> = (0..4000).map(|i| State::first(i % 2, &list)).collect();
    // Decisions sampled from π, as GRPO's rollouts are.
    let acted = family
        .act(
            &policy,
            &cohort,
            &states,
            ActMode::Sample { temperature: 1.0 },
            &mut seeded_rng(3, "kl"),
            &device,
        )
        .unwrap();
    let decisions: Vec<usize> = acted.iter().map(|a| a.decision).collect();
    let score = |m: &ListPolicy<Flex>| {
        family
            .score(m, &cohort, &states, &decisions, 1.0, &device)
            .unwrap()
    };
    let (p, r) = (score(&policy), score(&reference));
    let exact = crate::kl::exact(p.distribution.unwrap(), r.distribution.unwrap())
        .mean()
        .into_scalar()
        .elem::<f64>();
    let k3 = crate::kl::k3(p.logp, r.logp).mean().into_scalar().elem::<f64>();
    assert!(exact > 0.01, "the two policies differ: {exact}");
    assert!(
        (k3 - exact).abs() < 0.1 * exact,
        "k3 {k3} estimates the exact KL {exact} within 10% over 4,000 samples"
    );
}

/// Keeps every step's log and the selection.
#[derive(Default)]
struct KeepSelection {
    log: Keep,
    selection: Option<crate::select::Selection>,
}

impl TrainObserver for KeepSelection {
    fn evaluate(
        &mut self,
        step: usize,
        split: SplitName,
        lists: &[FinalList],
    ) -> Result<BTreeMap<String, Option<f64>>, ObserverError> {
        self.log.evaluate(step, split, lists)
    }

    fn step(&mut self, log: &StepLog, total: usize) -> Result<(), ObserverError> {
        self.log.step(log, total)
    }

    fn selected(&mut self, selection: &crate::select::Selection) -> Result<(), ObserverError> {
        self.selection = Some(selection.clone());
        Ok(())
    }
}

#[test]
fn sft_selected_by_validation_hands_on_the_best_epoch_and_stops_when_it_no_longer_improves() {
    use crate::select::Select;
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let settings = SftSettings {
        epochs: 150,
        batch_size: 16,
        lr: 0.01,
        select: Select::Validation,
        patience: 20,
        ..SftSettings::default()
    };
    let empty = || vec![DrugSet::empty(6), DrugSet::empty(6)];
    let eval = EvalPlan {
        every: 1,
        sets: vec![EvalSet {
            split: SplitName::Val,
            visits: vec![0, 1],
            starts: empty(),
        }],
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sft.ckpt");
    let run = || {
        let mut observer = KeepSelection::default();
        let job = SftJob {
            cohort: &cohort,
            reward: &reward,
            train: &[0, 1],
            settings: &settings,
            starts: &no_run_starts,
            budget: 8,
            seed: 3,
            checkpoint: Some(&path),
            eval: &eval,
        };
        let model = train_sft::<_, CpuTrainBackend>(&family, &job, &mut observer, &FlexDevice).unwrap();
        (model.valid(), observer)
    };
    let (model, observer) = run();
    let log = &observer.log.0;
    let selection = observer.selection.clone().unwrap();
    let outcomes: Vec<f64> = log.iter().map(|l| l.evals[0].outcome.unwrap()).collect();
    let best = outcomes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let first_best = outcomes.iter().position(|&o| o == best).unwrap() + 1;
    assert_eq!(selection.step, first_best, "{outcomes:?}");
    assert_eq!(selection.outcome, Some(best));
    // The tiny cohort is learnt exactly (outcome 1 from empty lists), after
    // which nothing improves: twenty more evaluations, then it stops.
    assert!((best - 1.0).abs() < 1e-12, "{outcomes:?}");
    assert!(selection.stopped_early && selection.last == first_best + 20);
    assert_eq!(log.len(), selection.last);
    // The model handed on is the chosen epoch's: its greedy outcome on the
    // validation visits is the recorded one.
    let handed_on = greedy(
        &family,
        &model,
        &cohort,
        &reward,
        8,
        vec![(0, empty()[0].clone()), (1, empty()[1].clone())],
    );
    let mean = handed_on.iter().map(|r| r.outcome).sum::<f64>() / 2.0;
    assert_eq!(Some(mean), selection.outcome);
    assert!(crate::select::best_path(&path).exists());
    // Resumed after it ended, the loop trains nothing more and hands on the
    // same model with the same selection.
    let (again, observer) = run();
    assert_eq!(observer.selection, Some(selection));
    assert_eq!(observer.log.0.len(), log.len());
    let decoded_again = greedy(
        &family,
        &again,
        &cohort,
        &reward,
        8,
        vec![(0, empty()[0].clone()), (1, empty()[1].clone())],
    );
    let lists = |d: &[EpisodeResult<usize>]| d.iter().map(|r| r.final_list.to_vec()).collect::<Vec<_>>();
    assert_eq!(lists(&decoded_again), lists(&handed_on));
}

#[test]
fn grpo_selected_by_validation_counts_its_start_as_iteration_zero() {
    use crate::select::Select;
    let cohort = tiny();
    let reward = jaccard_reward();
    let family = family(&cohort, 16);
    let sft_settings = SftSettings {
        epochs: 3,
        ..SftSettings::default()
    };
    let (weak, _) = sft(&family, &cohort, &reward, &sft_settings, 2, None);
    let starts = vec![(0, DrugSet::empty(6)), (1, DrugSet::empty(6))];
    let start_outcome = greedy(&family, &weak.valid(), &cohort, &reward, 8, starts.clone())
        .iter()
        .map(|r| r.outcome)
        .sum::<f64>()
        / 2.0;
    let settings = GrpoSettings {
        iterations: 12,
        visits: 4,
        group: 4,
        lr: 0.02,
        warmup: 2,
        eval_every: 4,
        select: Select::Validation,
        ..GrpoSettings::default()
    };
    let eval = EvalPlan {
        every: 4,
        sets: vec![EvalSet {
            split: SplitName::Val,
            visits: vec![0, 1],
            starts: vec![DrugSet::empty(6), DrugSet::empty(6)],
        }],
    };
    let mut observer = KeepSelection::default();
    let job = grpo_job(&cohort, &reward, &settings, None, &eval);
    let aligned = train_grpo::<_, CpuTrainBackend>(&family, weak, &job, &mut observer, &FlexDevice).unwrap();
    let log = &observer.log.0;
    let evaluated: Vec<usize> = log
        .iter()
        .filter(|l| !l.evals.is_empty())
        .map(|l| l.step)
        .collect();
    assert_eq!(evaluated, [0, 4, 8, 12]);
    assert_eq!(log[0].evals[0].outcome, Some(start_outcome));
    let outcomes: Vec<(usize, f64)> = log
        .iter()
        .filter_map(|l| Some((l.step, l.evals.first()?.outcome?)))
        .collect();
    let best = outcomes.iter().map(|o| o.1).fold(f64::NEG_INFINITY, f64::max);
    let selection = observer.selection.unwrap();
    assert_eq!(selection.step, outcomes.iter().find(|o| o.1 == best).unwrap().0);
    let handed_on = greedy(&family, &aligned, &cohort, &reward, 8, starts)
        .iter()
        .map(|r| r.outcome)
        .sum::<f64>()
        / 2.0;
    assert_eq!(Some(handed_on), selection.outcome);
}

/// Sharded gradients (data parallelism without a second device): the
/// gradients of a batch split into shards, each weighted by its share of the
/// batch and summed, against the whole batch's.
mod sharded {
    use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    use burn::prelude::*;

    use super::*;
    use crate::grpo::{Sample, update_gradients};
    use crate::sft::sft_gradients;

    type Model = ListPolicy<CpuTrainBackend>;

    /// `Σ weight · gradient` over the shards, per parameter of `model`.
    struct WeightedSum<'a> {
        shards: &'a [(GradientsParams, f64)],
        out: GradientsParams,
    }

    impl ModuleVisitor<CpuTrainBackend> for WeightedSum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<CpuTrainBackend, D>>) {
            let mut sum: Option<Tensor<Flex, D>> = None;
            for (grads, weight) in self.shards {
                if let Some(g) = grads.get::<Flex, D>(param.id) {
                    let g = g.mul_scalar(*weight);
                    sum = Some(match sum {
                        Some(s) => s + g,
                        None => g,
                    });
                }
            }
            if let Some(s) = sum {
                self.out.register(param.id, s);
            }
        }
    }

    fn weighted_sum(model: &Model, shards: &[(GradientsParams, f64)]) -> GradientsParams {
        let mut v = WeightedSum {
            shards,
            out: GradientsParams::new(),
        };
        model.visit(&mut v);
        v.out
    }

    /// Every parameter's values, in the module's order.
    struct Flat(Vec<f32>);

    impl ModuleVisitor<Flex> for Flat {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Flex, D>>) {
            self.0.extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }

    /// The parameters after one SGD step of `grads` (SGD: the update is the
    /// gradient itself, scaled; Adam's first step would hide a wrong scale).
    fn stepped(model: &Model, grads: GradientsParams) -> Vec<f32> {
        let mut sgd = SgdConfig::new().init::<CpuTrainBackend, Model>();
        let next = sgd.step(0.5, model.clone(), grads);
        let mut flat = Flat(Vec::new());
        next.valid().visit(&mut flat);
        flat.0
    }

    fn assert_same_update(whole: &[f32], sharded: &[f32], before: &[f32]) {
        assert_eq!(whole.len(), sharded.len());
        let moved = whole
            .iter()
            .zip(before)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "the step moves the parameters ({moved})");
        for (i, (a, b)) in whole.iter().zip(sharded).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * a.abs(),
                "parameter {i}: {a} whole, {b} sharded"
            );
        }
    }

    fn init(family: &SetEncoder, seed: u64) -> Model {
        SetEncoder::into_trainable::<CpuTrainBackend>(
            family
                .init(&mut seeded_rng(seed, "shard-init"), &FlexDevice)
                .unwrap(),
        )
    }

    /// Seven decisions of the tiny cohort's two visits (6 drugs: slot `d`
    /// adds drug `d`, `6 + d` removes it, 12 stops), with their lists.
    fn decisions() -> Vec<(usize, DrugSet, usize)> {
        let l = |d: &[usize]| DrugSet::from_indices(6, d.iter().copied());
        vec![
            (0, l(&[]), 2),
            (0, l(&[]), 12),
            (1, l(&[1, 4]), 7),
            (1, l(&[1, 4]), 0),
            (0, l(&[0, 2, 3]), 9),
            (1, l(&[0, 2, 3]), 5),
            (1, l(&[0, 2, 3]), 12),
        ]
    }

    /// Shards of 3, 2 and 2 decisions.
    const SHARDS: [std::ops::Range<usize>; 3] = [0..3, 3..5, 5..7];

    fn sft_grads(
        family: &SetEncoder,
        model: &Model,
        part: &[(usize, DrugSet, usize)],
        rng: &mut Rng,
    ) -> GradientsParams {
        let cohort = tiny();
        let states: Vec<State<'_>> = part.iter().map(|(v, list, _)| State::first(*v, list)).collect();
        let decisions: Vec<usize> = part.iter().map(|d| d.2).collect();
        sft_gradients(family, model, &cohort, &states, &decisions, rng, &FlexDevice)
            .unwrap()
            .0
    }

    #[test]
    fn sharded_gradients_of_an_sft_step_make_the_whole_batch_s_update() {
        let family = family(&tiny(), 16); // no dropout: nothing drawn
        let model = init(&family, 4);
        let all = decisions();
        let mut flat = Flat(Vec::new());
        model.valid().visit(&mut flat);
        let whole = stepped(
            &model,
            sft_grads(&family, &model, &all, &mut seeded_rng(5, "sft")),
        );
        let shards: Vec<(GradientsParams, f64)> = SHARDS
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let mut rng = seeded_rng(5, &format!("sft-shard-{k}"));
                let g = sft_grads(&family, &model, &all[r.clone()], &mut rng);
                (g, r.len() as f64 / all.len() as f64)
            })
            .collect();
        let sharded = stepped(&model, weighted_sum(&model, &shards));
        assert_same_update(&whole, &sharded, &flat.0);
        // Unweighted (each shard's mean counted alike) is another update:
        // the test can tell the weights apart.
        let equal: Vec<(GradientsParams, f64)> = SHARDS
            .iter()
            .map(|r| {
                (
                    sft_grads(&family, &model, &all[r.clone()], &mut seeded_rng(5, "x")),
                    1.0 / 3.0,
                )
            })
            .collect();
        let unweighted = stepped(&model, weighted_sum(&model, &equal));
        assert!(
            whole.iter().zip(&unweighted).any(|(a, b)| (a - b).abs() > 1e-4),
            "shards of 3, 2 and 2 weighted alike differ from the whole"
        );
    }

    #[test]
    fn sharded_gradients_with_dropout_follow_each_shard_s_seeded_stream() {
        let family = SetEncoderConfig {
            hidden: 16,
            budget: 8,
            dropout: 0.3,
        }
        .build(&VisitFeatures::of(&tiny()))
        .unwrap();
        let model = init(&family, 4);
        let all = decisions();
        let run = |seed: u64| {
            let shards: Vec<(GradientsParams, f64)> = SHARDS
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let mut rng = seeded_rng(seed, &format!("sft-shard-{k}"));
                    let g = sft_grads(&family, &model, &all[r.clone()], &mut rng);
                    (g, r.len() as f64 / all.len() as f64)
                })
                .collect();
            stepped(&model, weighted_sum(&model, &shards))
        };
        assert_eq!(run(5), run(5), "the same seed: the same masks, the same update");
        assert_ne!(run(5), run(6), "the masks come from the shards' streams");
    }

    #[test]
    fn sharded_gradients_of_a_grpo_update_make_the_whole_batch_s_update() {
        let cohort = tiny();
        let reward = jaccard_reward();
        let family = family(&cohort, 16);
        let model = init(&family, 4);
        // The KL term's reference: another policy, so that the term counts.
        let reference = family
            .init(&mut seeded_rng(8, "shard-reference"), &FlexDevice)
            .unwrap();
        let all = decisions();
        // Old log-probabilities off the current ones by up to ±0.3, so that
        // some ratios are clipped; advantages of both signs.
        let states: Vec<State<'_>> = all.iter().map(|(v, list, _)| State::first(*v, list)).collect();
        let chosen: Vec<usize> = all.iter().map(|d| d.2).collect();
        let now = family
            .score(&model.valid(), &cohort, &states, &chosen, 1.0, &FlexDevice)
            .unwrap()
            .logp
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let samples: Vec<Sample<usize>> = all
            .iter()
            .enumerate()
            .map(|(i, (visit, list, decision))| Sample {
                visit: *visit,
                list: list.clone(),
                start: list.clone(),
                earlier: Vec::new(),
                decision: *decision,
                old_parts: vec![now[i] + 0.1 * (i as f32 - 3.0)],
                advantage: [1.2, -0.7, 0.4, -1.5, 0.9, 0.2, -0.3][i],
            })
            .collect();
        let settings = GrpoSettings {
            kl: 0.1,
            entropy: 0.01,
            ..GrpoSettings::default()
        };
        let eval = EvalPlan::default();
        let job = grpo_job(&cohort, &reward, &settings, None, &eval);
        let grads = |part: &[Sample<usize>]| {
            update_gradients(&family, &model, &reference, part, &job, &FlexDevice)
                .unwrap()
                .0
                .unwrap()
        };
        let mut flat = Flat(Vec::new());
        model.valid().visit(&mut flat);
        let whole = stepped(&model, grads(&samples));
        let shards: Vec<(GradientsParams, f64)> = SHARDS
            .iter()
            .map(|r| (grads(&samples[r.clone()]), r.len() as f64 / samples.len() as f64))
            .collect();
        let sharded = stepped(&model, weighted_sum(&model, &shards));
        assert_same_update(&whole, &sharded, &flat.0);
    }
}

/// The data-parallel path itself ([`crate::parallel`]), run with several
/// shards on one CPU device and [`Gather`]'s plain sum where CUDA builds
/// all-reduce with NCCL: the same splitting, weighting, replicas and
/// loops as on GPUs.
mod data_parallel {
    use burn::module::Module;
    use burn::optim::GradientsParams;

    use super::*;
    use crate::grpo::train_grpo_on;
    use crate::parallel::{DataParallel, Gather};
    use crate::sft::{sft_gradients, train_sft_on};

    fn three() -> DataParallel<CpuTrainBackend> {
        DataParallel::new(vec![FlexDevice; 3], Gather).unwrap()
    }

    /// `a` and `b` agree key by key, each value within `tolerance`
    /// (relative, or absolute near 0).
    fn assert_close_logs(a: &[StepLog], b: &[StepLog], tolerance: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.step, y.step);
            assert_eq!(
                x.train.keys().collect::<Vec<_>>(),
                y.train.keys().collect::<Vec<_>>()
            );
            for (key, v) in &x.train {
                let w = y.train[key];
                assert!(
                    (v - w).abs() <= tolerance * (1.0 + v.abs()),
                    "step {} `{key}`: {v} on one device, {w} sharded",
                    x.step
                );
            }
        }
    }

    #[test]
    fn a_step_over_three_shards_gives_the_whole_batch_s_gradients_weighted_by_share() {
        let cohort = tiny();
        let family = family(&cohort, 16);
        let model = SetEncoder::into_trainable::<CpuTrainBackend>(
            family
                .init(&mut seeded_rng(4, "shard-init"), &FlexDevice)
                .unwrap(),
        );
        let l = |d: &[usize]| DrugSet::from_indices(6, d.iter().copied());
        let lists = [
            l(&[]),
            l(&[]),
            l(&[1, 4]),
            l(&[1, 4]),
            l(&[0, 2, 3]),
            l(&[0, 2, 3]),
            l(&[0, 2, 3]),
        ];
        let visits = [0, 0, 1, 1, 0, 1, 1];
        let decisions = vec![2usize, 12, 7, 0, 9, 5, 12];
        let states: Vec<State<'_>> = visits
            .iter()
            .zip(&lists)
            .map(|(v, list)| State::first(*v, list))
            .collect();
        let (whole, whole_loss) = sft_gradients(
            &family,
            &model,
            &cohort,
            &states,
            &decisions,
            &mut seeded_rng(0, "unused"),
            &FlexDevice,
        )
        .unwrap();
        let parallel = three();
        let mut replicas = parallel.replicas();
        let mut seen = Vec::new();
        let (sharded, parts) = replicas
            .gradients(&model, decisions.len(), |shard| {
                assert!(shard.sharded);
                seen.push((shard.index, shard.range.clone()));
                let (g, loss) = sft_gradients(
                    &family,
                    shard.model,
                    &cohort,
                    &states[shard.range.clone()],
                    &decisions[shard.range],
                    &mut seeded_rng(0, "unused"),
                    shard.device,
                )?;
                Ok((Some(g), loss))
            })
            .unwrap();
        assert_eq!(seen, [(0, 0..3), (1, 3..5), (2, 5..7)]);
        let weights: Vec<f64> = parts.iter().map(|p| p.0).collect();
        assert_eq!(weights, [3.0 / 7.0, 2.0 / 7.0, 2.0 / 7.0]);
        let loss: f64 = parts.iter().map(|(w, l)| w * l).sum();
        assert!((loss - whole_loss).abs() < 1e-6, "{loss} vs {whole_loss}");
        let sharded = sharded.unwrap();
        let mut compared = 0;
        let mut check = Compare {
            whole: &whole,
            sharded: &sharded,
            compared: &mut compared,
        };
        model.visit(&mut check);
        assert!(compared > 0);
    }

    /// Compares two gradients parameter by parameter.
    struct Compare<'a> {
        whole: &'a GradientsParams,
        sharded: &'a GradientsParams,
        compared: &'a mut usize,
    }

    impl burn::module::ModuleVisitor<CpuTrainBackend> for Compare<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<CpuTrainBackend, D>>,
        ) {
            let whole = self.whole.get::<Flex, D>(param.id);
            let sharded = self.sharded.get::<Flex, D>(param.id);
            assert_eq!(whole.is_some(), sharded.is_some(), "parameter {}", param.id);
            let (Some(a), Some(b)) = (whole, sharded) else {
                return;
            };
            let (a, b) = (
                a.into_data().to_vec::<f32>().unwrap(),
                b.into_data().to_vec::<f32>().unwrap(),
            );
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 + 1e-4 * x.abs(), "{x} whole, {y} sharded");
            }
            *self.compared += 1;
        }
    }

    #[test]
    fn sft_sharded_over_three_replicas_trains_as_on_one_device() {
        let cohort = tiny();
        let reward = jaccard_reward();
        let family = family(&cohort, 16); // no dropout: the shards draw nothing
        let settings = SftSettings {
            epochs: 15,
            batch_size: 5,
            lr: 0.01,
            ..SftSettings::default()
        };
        let eval = EvalPlan::default();
        let job = sft_job(&cohort, &reward, &settings, 7, None, &eval);
        let mut one = Keep::default();
        let single = train_sft::<_, CpuTrainBackend>(&family, &job, &mut one, &FlexDevice).unwrap();
        let mut sharded_log = Keep::default();
        let sharded = train_sft_on(&family, &job, &mut sharded_log, &three()).unwrap();
        // Every batch after the first is computed by replicas that took the
        // earlier steps' parameters: stale replicas would part the curves.
        assert_close_logs(&one.0, &sharded_log.0, 1e-4);
        let loss = losses(&one.0, "loss/sft");
        let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
        assert!(mean(&loss[12..]) < mean(&loss[..3]) * 0.8, "it trains: {loss:?}");
        let flat = |m: &ListPolicy<CpuTrainBackend>| {
            let mut f = Vec::new();
            m.valid().visit(&mut FlatParams(&mut f));
            f
        };
        for (a, b) in flat(&single).iter().zip(&flat(&sharded)) {
            assert!((a - b).abs() <= 1e-4 + 1e-3 * a.abs(), "{a} vs {b}");
        }
    }

    struct FlatParams<'a>(&'a mut Vec<f32>);

    impl burn::module::ModuleVisitor<Flex> for FlatParams<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<Flex, D>>,
        ) {
            self.0.extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }

    #[test]
    fn a_sharded_sft_run_with_dropout_is_fixed_by_its_seed_and_resumes_exactly() {
        let cohort = tiny();
        let reward = jaccard_reward();
        let family = SetEncoderConfig {
            hidden: 16,
            budget: 8,
            dropout: 0.3,
        }
        .build(&VisitFeatures::of(&cohort))
        .unwrap();
        let settings = |epochs| SftSettings {
            epochs,
            batch_size: 5,
            ..SftSettings::default()
        };
        let eval = EvalPlan::default();
        let run = |epochs, seed, checkpoint: Option<&Path>| {
            let settings = settings(epochs);
            let job = sft_job(&cohort, &reward, &settings, seed, checkpoint, &eval);
            let mut keep = Keep::default();
            train_sft_on(&family, &job, &mut keep, &three()).unwrap();
            keep.0
        };
        let straight = run(4, 7, None);
        assert_eq!(run(4, 7, None), straight, "the same seed, the same masks");
        assert_ne!(run(4, 8, None), straight);
        // The shards' masks differ from an unsharded run's (their own streams).
        let mut one = Keep::default();
        let four = settings(4);
        train_sft::<_, CpuTrainBackend>(
            &family,
            &sft_job(&cohort, &reward, &four, 7, None, &eval),
            &mut one,
            &FlexDevice,
        )
        .unwrap();
        assert_ne!(one.0, straight);
        // Interrupted after epoch 2, resumed to 4: the same epochs follow.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sft.ckpt");
        assert_eq!(run(2, 7, Some(&path)), straight[..2]);
        assert_eq!(run(4, 7, Some(&path)), straight);
    }

    #[test]
    fn grpo_sharded_over_three_replicas_trains_as_on_one_device() {
        let cohort = tiny();
        let reward = jaccard_reward();
        let family = family(&cohort, 16);
        let sft_settings = SftSettings {
            epochs: 2,
            ..SftSettings::default()
        };
        let (start, _) = sft(&family, &cohort, &reward, &sft_settings, 2, None);
        let settings = GrpoSettings {
            iterations: 5,
            visits: 2,
            group: 4,
            warmup: 0,
            lr: 0.01,
            // The KL term scores each shard against the reference copied to
            // its device; two PPO epochs step the replicas within an update.
            kl: 0.1,
            ppo_epochs: 2,
            ..GrpoSettings::default()
        };
        let eval = EvalPlan::default();
        let job = grpo_job(&cohort, &reward, &settings, None, &eval);
        let mut one = Keep::default();
        train_grpo::<_, CpuTrainBackend>(&family, start.clone(), &job, &mut one, &FlexDevice).unwrap();
        let mut sharded = Keep::default();
        train_grpo_on(&family, start, &job, &mut sharded, &three()).unwrap();
        assert_close_logs(&one.0, &sharded.0, 1e-4);
        assert!(
            one.0.iter().any(|l| l.train["kl"] > 1e-6),
            "the policy moves off its reference, so the KL term counts"
        );
    }
}
