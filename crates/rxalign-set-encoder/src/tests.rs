use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::module::Module;
use rxalign_core::{Action, DrugSet, seeded_rng};

use super::*;
use rxalign_policy::family::{ActMode, Effect, PolicyFamily, State};
use rxalign_policy::features::VisitFeatures;
use rxalign_policy::test_support::tiny;

#[test]
fn the_set_encoder_masks_samples_and_acts_consistently() {
    let cohort = tiny();
    let features = VisitFeatures::of(&cohort);
    let family = SetEncoderConfig {
        hidden: 8,
        budget: 8,
        ..SetEncoderConfig::default()
    }
    .build(&features)
    .unwrap();
    let policy: ListPolicy<Flex> = family.init(&mut seeded_rng(3, "t"), &FlexDevice).unwrap();
    let list = DrugSet::from_indices(6, [1, 4]);
    let states = [State::first(0, &list), State::first(1, &list)];
    let batch = || {
        let states: Vec<_> = states.iter().map(|s| (s.visit, s.list)).collect();
        StateBatch::<Flex>::new(&features, &cohort, &states, &FlexDevice)
    };
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
    // A cold temperature samples the greedy action; samples are valid,
    // carry their log-probability, and match the scores of `score`.
    let act = |mode, seed| {
        family
            .act(
                &policy,
                &cohort,
                &states,
                mode,
                &mut seeded_rng(seed, "s"),
                &FlexDevice,
            )
            .unwrap()
    };
    let greedy: Vec<usize> = act(ActMode::Greedy, 0).into_iter().map(|a| a.decision).collect();
    let cold: Vec<usize> = act(ActMode::Sample { temperature: 1e-4 }, 0)
        .into_iter()
        .map(|a| a.decision)
        .collect();
    assert_eq!(greedy, cold);
    for seed in 0..50 {
        let acted = act(ActMode::Sample { temperature: 1.0 }, seed);
        for (row, a) in acted.iter().enumerate() {
            assert!(a.logp() > -1.0e6, "sampled an invalid action");
            assert!((a.logp() - logp[row * space + a.decision]).abs() < 1e-5);
            assert!(matches!(family.effect(&a.decision, &cohort), Effect::Act(_)));
        }
        let decisions: Vec<usize> = acted.iter().map(|a| a.decision).collect();
        let scored = family
            .score(&policy, &cohort, &states, &decisions, 1.0, &FlexDevice)
            .unwrap();
        let scores: Vec<f32> = scored.logp.into_data().to_vec().unwrap();
        for (s, a) in scores.iter().zip(&acted) {
            assert!((s - a.logp()).abs() < 1e-5);
        }
    }
    // The expert decision of an action is its slot.
    assert_eq!(family.expert(states[0], Action::Remove(4), &cohort), 6 + 4);
    assert_eq!(family.effect(&(2 * 6), &cohort), Effect::Act(Action::Stop));
}

#[test]
fn non_finite_parameters_are_refused_not_sampled() {
    let cohort = tiny();
    let family = SetEncoderConfig {
        hidden: 4,
        budget: 8,
        ..SetEncoderConfig::default()
    }
    .build(&VisitFeatures::of(&cohort))
    .unwrap();
    let policy: ListPolicy<Flex> = family.init(&mut seeded_rng(3, "t"), &FlexDevice).unwrap();
    // Every parameter NaN, as after a diverged update.
    let policy = policy.map(&mut NanMapper);
    let list = DrugSet::empty(6);
    let e = family
        .act(
            &policy,
            &cohort,
            &[State::first(0, &list)],
            ActMode::Sample { temperature: 1.0 },
            &mut seeded_rng(0, "s"),
            &FlexDevice,
        )
        .unwrap_err();
    assert!(e.to_string().contains("not finite"), "{e}");
}

struct NanMapper;

impl burn::module::ModuleMapper<Flex> for NanMapper {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<Flex, D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<Flex, D>> {
        param.map(|t| t.mul_scalar(f32::NAN))
    }
}

#[test]
fn dropout_applies_to_supervised_scores_only_and_is_seeded() {
    use burn::backend::Autodiff;
    type Ad = Autodiff<Flex>;
    let cohort = tiny();
    let features = VisitFeatures::of(&cohort);
    let build = |dropout| {
        SetEncoderConfig {
            hidden: 16,
            budget: 8,
            dropout,
        }
        .build(&features)
        .unwrap()
    };
    let (plain, dropped) = (build(0.0), build(0.5));
    let policy: ListPolicy<Ad> = plain.init(&mut seeded_rng(3, "t"), &FlexDevice).unwrap();
    let list = DrugSet::from_indices(6, [1, 4]);
    let states = [State::first(0, &list), State::first(1, &list)];
    let decisions = [Action::Stop.index(6), Action::Add(2).index(6)];
    let logp = |family: &SetEncoder, seed| {
        let mut rng = seeded_rng(seed, "dropout");
        let scored = family
            .score_train(&policy, &cohort, &states, &decisions, 1.0, &mut rng, &FlexDevice)
            .unwrap();
        let values: Vec<f32> = scored.logp.into_data().to_vec().unwrap();
        (values, rng.get_word_pos())
    };
    let exact: Vec<f32> = plain
        .score(&policy, &cohort, &states, &decisions, 1.0, &FlexDevice)
        .unwrap()
        .logp
        .into_data()
        .to_vec()
        .unwrap();
    // Without dropout: the plain score, and nothing drawn.
    assert_eq!(logp(&plain, 1), (exact.clone(), 0));
    // With it: other values, the same for the same seed, and never in
    // `score` (acting and GRPO).
    let (a, drawn) = logp(&dropped, 1);
    assert!(drawn > 0 && a != exact);
    assert_eq!(logp(&dropped, 1).0, a);
    assert_ne!(logp(&dropped, 2).0, a);
    let acting: Vec<f32> = dropped
        .score(&policy, &cohort, &states, &decisions, 1.0, &FlexDevice)
        .unwrap()
        .logp
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(acting, exact);
    let refused = SetEncoderConfig {
        dropout: 1.0,
        ..SetEncoderConfig::default()
    };
    assert!(refused.validate().is_err());
}

/// An embedding bag by index sums the same rows as the product of a
/// multi-hot row with the table (how the policy computed it before), and
/// its gradient counts each row once per bag that holds it; empty bags and
/// a batch of only empty bags give zeros.
#[test]
fn bags_sum_their_rows_as_the_multi_hot_product_does() {
    use burn::backend::Autodiff;
    use burn::tensor::{Tensor, TensorData};
    use rand::Rng as _;
    type Ad = Autodiff<Flex>;
    let (rows, width) = (40, 6);
    let mut rng = seeded_rng(5, "bags");
    let values: Vec<f32> = (0..rows * width).map(|_| rng.random_range(-1.0..1.0)).collect();
    let table = || Tensor::<Ad, 2>::from_data(TensorData::new(values.clone(), [rows, width]), &FlexDevice);
    // Bags with a repeated row (counted once), an empty bag, the last row.
    let bags: Vec<Vec<usize>> = vec![vec![3, 17, 3, 39], vec![], vec![0, 1, 2, 17], vec![39]];
    let mut hot = vec![0f32; bags.len() * rows];
    for (b, members) in bags.iter().enumerate() {
        for &r in members {
            hot[b * rows + r] = 1.0;
        }
    }
    let hot = Tensor::<Ad, 2>::from_data(TensorData::new(hot, [bags.len(), rows]), &FlexDevice);
    let leaf = table().require_grad();
    let by_index = Bags::<Ad>::new(bags.iter().map(|b| b.iter().copied()), &FlexDevice).sum(leaf.clone());
    let by_product = hot.matmul(table());
    let a: Vec<f32> = by_index.clone().into_data().to_vec().unwrap();
    let b: Vec<f32> = by_product.into_data().to_vec().unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6, "{x} against {y}");
    }
    assert!(a[width..2 * width].iter().all(|&x| x == 0.0), "the empty bag");
    let grads = by_index.sum().backward();
    let grad: Vec<f32> = leaf.grad(&grads).unwrap().into_data().to_vec().unwrap();
    for r in 0..rows {
        let holding = bags.iter().filter(|b| b.contains(&r)).count() as f32;
        assert!(
            grad[r * width..(r + 1) * width].iter().all(|&g| g == holding),
            "row {r}"
        );
    }
    let empty = Bags::<Ad>::new([Vec::<usize>::new(), Vec::new()].into_iter(), &FlexDevice);
    assert!(empty.members.is_none());
    let zeros: Vec<f32> = empty.sum(table()).into_data().to_vec().unwrap();
    assert_eq!(zeros, vec![0.0; 2 * width]);
}
