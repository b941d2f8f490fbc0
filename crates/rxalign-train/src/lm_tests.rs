//! The shared loops on FLAME's language-model family (`llama`) of a tiny
//! cohort, and step-wise credit on tokens.

use std::collections::HashSet;

use burn::backend::flex::FlexDevice;
use burn::module::AutodiffModule;
use rxalign_core::{Action, DrugSet, Rng, seeded_rng};
use rxalign_env::{Reward, RewardConfig, RewardTermSpec};
use rxalign_llama::{LlamaPolicy, LlamaPolicyConfig, PromptStyle, ScratchModel};
use rxalign_lm::LoraConfig;
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::family::{ActMode, Acted, Effect};
use rxalign_policy::test_support::tiny;

use crate::episodes::{EpisodeResult, EpisodeStep, Episodes, Recording};
use crate::grpo::{GrpoJob, GrpoSettings, advantages, group_advantages, token_advantages, train_grpo};
use crate::observer::{EvalPlan, StepLog};
use crate::sft::{SftJob, SftSettings, SftStarts, train_sft};
use crate::tests::Keep;

fn reward() -> Reward {
    RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("refusal", 0.2),
        ],
    }
    .init()
    .unwrap()
}

fn family(prompts: PromptStyle) -> LlamaPolicy {
    with_lora(prompts, None)
}

fn with_lora(prompts: PromptStyle, lora: Option<LoraConfig>) -> LlamaPolicy {
    LlamaPolicyConfig {
        scratch: Some(ScratchModel {
            layers: 1,
            heads: 2,
            kv_heads: 1,
            head_dim: 16,
            intermediate: 32,
            vocab: 300,
        }),
        prompts,
        lora,
        max_lines: 4,
        max_line_tokens: 6,
        ..LlamaPolicyConfig::default()
    }
    .build(&tiny())
    .unwrap()
}

fn empty_starts(_: usize, _: &mut Rng) -> Result<DrugSet, String> {
    Ok(DrugSet::empty(6))
}

/// The model a loop hands on (the family's `Trainable`).
type Model = rxalign_lm::Llama<CpuTrainBackend>;

/// SFT of `family` on the tiny cohort's visits 0 and 1 from empty starts:
/// the model and the loop's log.
fn sft(family: &LlamaPolicy, settings: &SftSettings, seed: u64) -> (Model, Vec<StepLog>) {
    let (cohort, reward, eval) = (tiny(), reward(), EvalPlan::default());
    let job = SftJob {
        cohort: &cohort,
        reward: &reward,
        train: &[0, 1],
        settings,
        starts: &empty_starts,
        budget: family.config().budget(),
        seed,
        checkpoint: None,
        eval: &eval,
    };
    let mut keep = Keep::default();
    let model = train_sft::<_, CpuTrainBackend>(family, &job, &mut keep, &FlexDevice).unwrap();
    (model, keep.0)
}

/// GRPO of `family` from `start` on the same visits and starts: the
/// loop's log.
fn grpo(
    family: &LlamaPolicy,
    start: Model,
    settings: &GrpoSettings,
    seed: u64,
    checkpoint: Option<&std::path::Path>,
) -> Vec<StepLog> {
    let (cohort, reward, eval) = (tiny(), reward(), EvalPlan::default());
    let job = GrpoJob {
        cohort: &cohort,
        reward: &reward,
        train: &[0, 1],
        settings,
        starts: &empty_starts,
        budget: family.config().budget(),
        seed,
        checkpoint,
        eval: &eval,
    };
    let mut keep = Keep::default();
    train_grpo::<_, CpuTrainBackend>(family, start, &job, &mut keep, &FlexDevice).unwrap();
    keep.0
}

/// A step whose decision has `tokens` parts and the given shaped reward.
fn step(tokens: usize, reward: f64, effect: Effect) -> EpisodeStep<u32> {
    EpisodeStep {
        list_before: DrugSet::empty(3),
        acted: Acted {
            decision: 0,
            parts: vec![-0.5; tokens],
        },
        effect,
        refused: false,
        reward,
    }
}

fn rollout(outcome: f64, steps: Vec<EpisodeStep<u32>>) -> EpisodeResult<u32> {
    EpisodeResult {
        visit: 0,
        start: DrugSet::empty(3),
        steps,
        final_list: DrugSet::empty(3),
        outcome,
        final_terms: Vec::new(),
        trajectory: None,
    }
}

#[test]
fn every_token_of_a_line_carries_the_line_s_step_advantage() {
    let add = |d| Effect::Act(Action::Add(d));
    let rollouts = vec![
        // Lines of 3 and 2 tokens, the end of the add answer, a forced end
        // (no parts: not trained), and the stop token.
        rollout(
            1.0,
            vec![
                step(3, 0.5, add(0)),
                step(2, -0.25, add(1)),
                step(1, 0.0, Effect::NextPrompt),
                step(0, 0.0, Effect::NextPrompt),
                step(1, 0.0, Effect::Act(Action::Stop)),
            ],
        ),
        rollout(
            3.0,
            vec![step(4, 1.0, add(2)), step(1, 0.0, Effect::Act(Action::Stop))],
        ),
    ];
    for lambda in [0.0, 0.5] {
        let settings = GrpoSettings {
            group: 2,
            step_weight: Some(lambda),
            ..GrpoSettings::default()
        };
        let samples = advantages(&rollouts, &settings);
        let expected = group_advantages(
            &[1.0, 3.0],
            &[vec![0.5, -0.25, 0.0, 0.0, 0.0], vec![1.0, 0.0]],
            lambda,
        );
        // The forced end is left out.
        let per_step = [
            expected[0][0],
            expected[0][1],
            expected[0][2],
            expected[0][4],
            expected[1][0],
            expected[1][1],
        ];
        assert_eq!(samples.len(), per_step.len());
        let parts = 4;
        let tokens = token_advantages(&samples, parts);
        for (i, (s, a)) in samples.iter().zip(per_step).enumerate() {
            assert!((s.advantage - a).abs() < 1e-12);
            for k in 0..parts {
                let t = f64::from(tokens[i * parts + k]);
                if k < s.old_parts.len() {
                    assert!((t - a).abs() < 1e-6, "sample {i} token {k}: {t} vs {a}");
                } else {
                    assert_eq!(t, 0.0, "padding");
                }
            }
        }
        // The end-of-answer tokens carry the normalised outcome alone: -1
        // and +1 (outcomes 1 and 3).
        assert!((samples[2].advantage + 1.0).abs() < 1e-12);
        assert!((samples[5].advantage - 1.0).abs() < 1e-12);
        if lambda == 0.0 {
            // Plain GRPO: every token of a rollout has the same advantage.
            for (s, expect) in samples.iter().zip([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0]) {
                assert!((s.advantage - expect).abs() < 1e-12);
            }
        }
        // The rest of each sample's state: the start and the earlier effects.
        assert_eq!(
            samples[3].earlier.len(),
            4,
            "the stop after four earlier decisions"
        );
        assert_eq!(samples[3].earlier[2], Effect::NextPrompt);
    }
}

#[test]
fn sft_then_grpo_train_the_language_model() {
    let cohort = tiny();
    let reward = reward();
    let family = family(PromptStyle::AddRemove);
    let budget = family.config().budget();
    // Expert answers from the run's (empty) starts: the same targets every
    // epoch, one batch per epoch.
    let sft_settings = SftSettings {
        epochs: 80,
        batch_size: 16,
        lr: 0.01,
        starts: SftStarts::Run,
        eval_every: 0,
        ..SftSettings::default()
    };
    let (model, log) = sft(&family, &sft_settings, 3);
    let loss: Vec<f64> = log.iter().map(|l| l.train["loss/sft"]).collect();
    assert!(loss[79] < loss[0] * 0.1, "{loss:?}");
    // Greedy answers from the empty list write the prescribed drugs.
    let recorded: HashSet<usize> = [0].into();
    let decoded = Episodes {
        cohort: &cohort,
        reward: &reward,
        budget,
        mode: ActMode::Greedy,
        max_batch: None,
        record: Some(Recording {
            method: "sft",
            split: "test",
            visits: &recorded,
        }),
    }
    .run(
        &family,
        &model.valid(),
        vec![(0, DrugSet::empty(6)), (1, DrugSet::empty(6))],
        &mut seeded_rng(0, "g"),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(decoded[0].final_list.to_vec(), vec![0, 2]);
    assert_eq!(decoded[1].final_list.to_vec(), vec![3, 4, 5]);
    let effects: Vec<Effect> = decoded[0].steps.iter().map(|s| s.effect.clone()).collect();
    assert_eq!(
        effects,
        [
            Effect::Act(Action::Add(0)),
            Effect::Act(Action::Add(2)),
            Effect::NextPrompt,
            Effect::Act(Action::Stop)
        ]
    );
    // The trajectory keeps each line as written and its tokens'
    // probabilities, whose product is the line's (the end of the add
    // answer is no step of the decision process, so it is not recorded).
    let trajectory = decoded[0].trajectory.as_ref().unwrap();
    let texts: Vec<Option<&str>> = trajectory.steps.iter().map(|s| s.text.as_deref()).collect();
    let names = |d: usize| Some(cohort.drugs.name(d));
    assert_eq!(texts, [names(0), names(2), Some("<end of answer>")]);
    for s in &trajectory.steps {
        let p = s.probability.unwrap();
        if s.part_probabilities.is_empty() {
            continue;
        }
        let product: f64 = s.part_probabilities.iter().product();
        assert!((product - p).abs() < 1e-4 * p.max(1e-3), "{product} vs {p}");
    }
    assert!(trajectory.steps.iter().any(|s| s.part_probabilities.len() > 1));
    // Two iterations of step-wise GRPO from it: finite losses, the KL (k3
    // per token) to the SFT model small and non-negative.
    let settings = GrpoSettings {
        iterations: 2,
        visits: 2,
        group: 4,
        lr: 1e-3,
        step_weight: Some(0.5),
        eval_every: 0,
        ..GrpoSettings::default()
    };
    let log = grpo(&family, model, &settings, 4, None);
    assert_eq!(log.len(), 2);
    for log in &log {
        assert!(log.train["loss/grpo"].is_finite());
        assert!(
            log.train["kl/k3"] >= 0.0 && log.train["kl/k3"] < 1.0,
            "{:?}",
            log.train
        );
    }
}

#[test]
fn a_language_model_grpo_checkpoint_resumes_to_the_same_next_loss() {
    let family = family(PromptStyle::Edit);
    let sft_settings = SftSettings {
        epochs: 3,
        batch_size: 8,
        lr: 0.01,
        eval_every: 0,
        ..SftSettings::default()
    };
    let settings = |stop_after| GrpoSettings {
        iterations: 3,
        visits: 2,
        group: 3,
        lr: 1e-3,
        warmup: 0,
        eval_every: 0,
        stop_after,
        ..GrpoSettings::default()
    };
    let run = |settings: &GrpoSettings, checkpoint: Option<&std::path::Path>| {
        grpo(&family, sft(&family, &sft_settings, 1).0, settings, 2, checkpoint)
    };
    let straight = run(&settings(None), None);
    assert_eq!(straight.len(), 3);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grpo.ckpt");
    assert_eq!(run(&settings(Some(1)), Some(&path)), straight[..1]);
    assert_eq!(
        run(&settings(None), Some(&path)),
        straight,
        "iterations 2 and 3 repeat the uninterrupted run"
    );
}

/// With LoRA trained through SFT, GRPO's first iteration scores its
/// rollouts with the very policy its KL reference is (the SFT policy, the
/// adapter on), so that iteration's k3 is 0; against the base with the
/// adapter off it would not be.
#[test]
fn grpo_after_lora_sft_starts_at_its_reference() {
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let family = with_lora(PromptStyle::AddRemove, Some(lora));
    let sft_settings = SftSettings {
        epochs: 20,
        batch_size: 16,
        lr: 0.02,
        starts: SftStarts::Run,
        eval_every: 0,
        ..SftSettings::default()
    };
    let (model, log) = sft(&family, &sft_settings, 3);
    let loss: Vec<f64> = log.iter().map(|l| l.train["loss/sft"]).collect();
    assert!(loss[19] < loss[0] * 0.8, "SFT moved the adapter: {loss:?}");
    let settings = GrpoSettings {
        iterations: 2,
        visits: 2,
        group: 4,
        lr: 1e-2,
        warmup: 0,
        step_weight: Some(0.5),
        eval_every: 0,
        ..GrpoSettings::default()
    };
    let log = grpo(&family, model, &settings, 4, None);
    let k3: Vec<f64> = log.iter().map(|l| l.train["kl/k3"]).collect();
    assert!(k3[0].abs() < 1e-6, "iteration 1 acts with its reference: {k3:?}");
    assert!(k3[1] > 0.0, "the update moved the policy: {:?}", log[0].train);
}
