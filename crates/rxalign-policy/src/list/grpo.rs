//! GRPO and step-wise GRPO (FLAME Eq. 6) on the list policy.
//!
//! For each visit a group of `G` rollouts is sampled from the policy; the
//! advantage of step `t` of rollout `i` is
//! `A_{i,t} = (R_i − mean R) / std R + λ · r_{i,t}`, where `R_i` is the
//! outcome reward `Phi(S_T) − Phi(S_0)` and `r_{i,t}` the step's shaped
//! reward `Phi(S_{t+1}) − Phi(S_t)`; `λ = 0` is plain GRPO. The loss is the
//! PPO-clipped policy gradient, plus `kl` times the KL divergence to the
//! frozen reference (the SFT policy), minus `entropy` times the entropy;
//! the learning rate warms up linearly and decays on a cosine; gradients
//! are clipped by norm.

use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::IndexedRandom;
use rxalign_core::{Action, Cohort, DrugSet, Rng, seeded_rng};
use rxalign_env::{Episode, Reward};
use serde::{Deserialize, Serialize};

use super::{ActionPolicy, LOG_FLOOR, ListPolicy, StateBatch, TrainedListPolicy};
use crate::PolicyError;
use crate::checkpoint;
use crate::classifier::VisitFeatures;

/// Settings of (step-wise) GRPO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoSettings {
    pub iterations: usize,
    /// Training visits per iteration.
    pub visits: usize,
    /// Rollouts per visit.
    pub group: usize,
    pub lr: f64,
    /// λ: the weight of each step's shaped reward; unset means 0 for `grpo`
    /// and FLAME's 0.5 for `step_grpo`. Written as a plain number.
    #[serde(deserialize_with = "some_number", skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<f64>,
    /// Weight of the KL divergence to the frozen SFT policy.
    pub kl: f64,
    /// Weight of the entropy bonus.
    pub entropy: f64,
    /// PPO clipping range ε.
    pub clip: f64,
    /// Gradient steps on each batch of rollouts (1: the ratio stays 1).
    pub ppo_epochs: usize,
    /// Iterations of linear warm-up before the cosine decay.
    pub warmup: usize,
    /// Gradient clipping by norm.
    pub grad_norm: f64,
    /// Sampling temperature of rollouts.
    pub temperature: f64,
    /// Stop after this iteration, the schedule still spanning `iterations`
    /// (a run cut short on purpose; its checkpoint resumes later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_after: Option<usize>,
}

fn some_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(d).map(Some)
}

impl Default for GrpoSettings {
    fn default() -> Self {
        Self {
            iterations: 60,
            visits: 32,
            group: 8,
            lr: 2e-4,
            step_weight: None,
            kl: 0.02,
            entropy: 0.0,
            clip: 0.2,
            ppo_epochs: 1,
            warmup: 5,
            grad_norm: 1.0,
            temperature: 1.0,
            stop_after: None,
        }
    }
}

impl GrpoSettings {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, message: &str| {
            Err(PolicyError::Config {
                field,
                message: message.to_string(),
            })
        };
        if self.iterations == 0 || self.visits == 0 || self.ppo_epochs == 0 {
            return bad("iterations", "iterations, visits and ppo_epochs must be positive");
        }
        if self.group < 2 {
            return bad("group", "a group needs at least 2 rollouts");
        }
        for (field, x) in [
            ("lr", self.lr),
            ("temperature", self.temperature),
            ("grad_norm", self.grad_norm),
        ] {
            if !(x > 0.0 && x.is_finite()) {
                return bad(field, "must be a positive number");
            }
        }
        for (field, x) in [
            ("kl", self.kl),
            ("entropy", self.entropy),
            ("clip", self.clip),
            ("step_weight", self.lambda()),
        ] {
            if !(x >= 0.0 && x.is_finite()) {
                return bad(field, "must be a non-negative number");
            }
        }
        Ok(())
    }

    /// λ, 0 when unset.
    pub fn lambda(&self) -> f64 {
        self.step_weight.unwrap_or(0.0)
    }

    /// The learning rate of an iteration (1-based): linear warm-up, then a
    /// cosine decay to 0 at the last iteration.
    pub fn lr_at(&self, iteration: usize) -> f64 {
        if iteration <= self.warmup {
            return self.lr * iteration as f64 / self.warmup.max(1) as f64;
        }
        let span = (self.iterations - self.warmup.min(self.iterations)).max(1) as f64;
        let progress = (iteration - self.warmup) as f64 / span;
        self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }
}

/// FLAME's advantages for one group: the group-normalised outcome plus `λ`
/// times each step's shaped reward. Where the outcomes do not vary, the
/// normalised part is 0.
pub fn group_advantages(outcomes: &[f64], step_rewards: &[Vec<f64>], step_weight: f64) -> Vec<Vec<f64>> {
    let n = outcomes.len() as f64;
    let mean = outcomes.iter().sum::<f64>() / n;
    let std = (outcomes.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    outcomes
        .iter()
        .zip(step_rewards)
        .map(|(r, steps)| {
            let normalised = if std > 1e-8 { (r - mean) / std } else { 0.0 };
            steps.iter().map(|s| normalised + step_weight * s).collect()
        })
        .collect()
}

/// One iteration's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpoLog {
    pub iteration: usize,
    pub mean_outcome: f64,
    /// The PPO-clipped surrogate loss with its KL and entropy terms (the
    /// last PPO epoch's).
    pub loss: f64,
    /// Each reward term's weighted value at the rollouts' final lists,
    /// averaged, by the reward's term names.
    pub mean_terms: Vec<(String, f64)>,
    /// Every sampled step's shaped reward, for histograms.
    pub step_rewards: Vec<f64>,
    /// Every rollout's final list size, for histograms.
    pub list_sizes: Vec<f64>,
    pub mean_advantage: f64,
    pub std_advantage: f64,
    pub kl: f64,
    pub entropy: f64,
    pub lr: f64,
}

/// A sampled step: the state, the action slot, its log-probability when
/// sampled, and its advantage.
struct Sample {
    visit: usize,
    list: DrugSet,
    slot: usize,
    old_logp: f32,
    advantage: f64,
}

/// A rollout: its visit, its steps `(list before, action slot, log-prob
/// when sampled, step reward)`, its outcome reward, and its final list's
/// weighted reward terms and size.
type Rollout = (usize, Vec<RolloutStep>, f64, Vec<f64>, usize);

/// `(list before, action slot, log-prob when sampled, step reward)`.
type RolloutStep = (DrugSet, usize, f32, f64);

/// Samples a group of rollouts for each visit from `starts`, all in
/// lockstep; returns per rollout its visit, steps `(list before, slot,
/// log-prob, step reward)` and outcome.
#[expect(clippy::too_many_arguments, reason = "the inputs of one sampling pass")]
fn rollouts<B: Backend>(
    policy: &ListPolicy<B>,
    features: &VisitFeatures,
    cohort: &Cohort,
    reward: &Reward,
    starts: &[(usize, DrugSet)],
    settings: &GrpoSettings,
    budget: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Vec<Rollout> {
    let drugs = cohort.drug_count();
    let mut episodes: Vec<(usize, Episode<'_>, Vec<RolloutStep>)> = starts
        .iter()
        .flat_map(|(v, s)| (0..settings.group).map(move |_| (*v, s.clone())))
        .map(|(v, s)| {
            (
                v,
                Episode::new(reward, &cohort.visits[v].drugs, &cohort.ddi, s, budget),
                Vec::new(),
            )
        })
        .collect();
    loop {
        let active: Vec<usize> = (0..episodes.len())
            .filter(|&i| !episodes[i].1.is_done())
            .collect();
        if active.is_empty() {
            break;
        }
        let lists: Vec<DrugSet> = active.iter().map(|&i| episodes[i].1.list().clone()).collect();
        let states: Vec<(usize, &DrugSet)> = active
            .iter()
            .zip(&lists)
            .map(|(&i, l)| (episodes[i].0, l))
            .collect();
        let batch = StateBatch::<B>::new(features, cohort, &states, device);
        let sampled = policy.sample(batch, settings.temperature, rng);
        for (row, (&i, (slot, logp))) in active.iter().zip(sampled).enumerate() {
            let action = Action::from_index(slot, drugs);
            let before = lists[row].clone();
            let r = episodes[i].1.step(action).expect("sampled actions are valid");
            episodes[i].2.push((before, slot, logp, r.total));
        }
    }
    episodes
        .into_iter()
        .map(|(v, e, steps)| (v, steps, e.outcome_reward(), e.terms().to_vec(), e.list().len()))
        .collect()
}

/// Aligns `policy` (the SFT module) with (step-wise) GRPO on the training
/// visits, starting from `start` lists, with the frozen SFT policy as the KL
/// reference. Returns the aligned policy and a log per iteration. With
/// `checkpoint`, the state after each iteration is written there and a
/// checkpoint already there is resumed from.
#[expect(clippy::too_many_arguments, reason = "the inputs of one training run")]
pub fn train_grpo<B: AutodiffBackend>(
    policy: ListPolicy<B>,
    features: VisitFeatures,
    cohort: &Cohort,
    train: &[usize],
    starts: &dyn Fn(usize, &mut Rng) -> Result<DrugSet, String>,
    reward: &Reward,
    settings: &GrpoSettings,
    budget: usize,
    seed: u64,
    checkpoint: Option<&Path>,
    device: &B::Device,
) -> Result<(TrainedListPolicy<B::InnerBackend>, Vec<GrpoLog>), PolicyError> {
    settings.validate()?;
    if train.is_empty() {
        return Err(PolicyError::Invalid("the training split is empty".into()));
    }
    let reference = policy.valid();
    let model = policy;
    let optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(settings.grad_norm as f32)))
        .init();
    let (mut model, mut optim, mut rng, mut log, first) =
        checkpoint::resume(checkpoint, model, optim, seeded_rng(seed, "grpo"), device)?;
    let last = settings
        .stop_after
        .map_or(settings.iterations, |s| s.min(settings.iterations));
    for iteration in first..=last {
        let visits: Vec<usize> = (0..settings.visits)
            .map(|_| *train.choose(&mut rng).expect("non-empty"))
            .collect();
        let mut group_starts = Vec::with_capacity(visits.len());
        for &v in &visits {
            group_starts.push((v, starts(v, &mut rng).map_err(PolicyError::Invalid)?));
        }
        let sampled = rollouts(
            &model.valid(),
            &features,
            cohort,
            reward,
            &group_starts,
            settings,
            budget,
            &mut rng,
            device,
        );
        let mut samples = Vec::new();
        let mut outcome_sum = 0.0;
        for group in sampled.chunks(settings.group) {
            let outcomes: Vec<f64> = group.iter().map(|g| g.2).collect();
            outcome_sum += outcomes.iter().sum::<f64>();
            let steps: Vec<Vec<f64>> = group.iter().map(|g| g.1.iter().map(|s| s.3).collect()).collect();
            let advantages = group_advantages(&outcomes, &steps, settings.lambda());
            for ((v, steps, ..), adv) in group.iter().zip(advantages) {
                for ((list, slot, old_logp, _), a) in steps.iter().zip(adv) {
                    samples.push(Sample {
                        visit: *v,
                        list: list.clone(),
                        slot: *slot,
                        old_logp: *old_logp,
                        advantage: a,
                    });
                }
            }
        }
        let n = samples.len();
        let adv_mean = samples.iter().map(|s| s.advantage).sum::<f64>() / n as f64;
        let adv_std = (samples
            .iter()
            .map(|s| (s.advantage - adv_mean).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        let states: Vec<(usize, &DrugSet)> = samples.iter().map(|s| (s.visit, &s.list)).collect();
        let slots = Tensor::<B, 2, Int>::from_data(
            TensorData::new(samples.iter().map(|s| s.slot as i64).collect::<Vec<_>>(), [n, 1]),
            device,
        );
        let adv = Tensor::<B, 2>::from_data(
            TensorData::new(
                samples.iter().map(|s| s.advantage as f32).collect::<Vec<_>>(),
                [n, 1],
            ),
            device,
        );
        let old = Tensor::<B, 2>::from_data(
            TensorData::new(samples.iter().map(|s| s.old_logp).collect::<Vec<_>>(), [n, 1]),
            device,
        );
        let ref_logp: Vec<f32> = reference
            .log_probs(
                StateBatch::new(&features, cohort, &states, device),
                settings.temperature,
            )
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("log-probabilities");
        let space = Action::space(cohort.drug_count());
        let ref_logp = Tensor::<B, 2>::from_data(TensorData::new(ref_logp, [n, space]), device);
        let lr = settings.lr_at(iteration);
        let (mut kl_value, mut entropy_value, mut loss_value) = (0.0, 0.0, 0.0);
        for _ in 0..settings.ppo_epochs {
            let logp = model.log_probs(
                StateBatch::new(&features, cohort, &states, device),
                settings.temperature,
            ); // [n, actions]
            let p = logp.clone().exp(); // [n, actions]
            let taken = logp.clone().gather(1, slots.clone()); // [n, 1]
            let ratio = (taken - old.clone()).exp(); // [n, 1]
            let clipped = ratio.clone().clamp(1.0 - settings.clip, 1.0 + settings.clip);
            let surrogate = (ratio * adv.clone()).min_pair(clipped * adv.clone()); // [n, 1]
            // Masked actions hold p = 0; their log terms are kept finite by
            // the clamp so that 0 · (−∞) never appears.
            let logp_safe = logp.clamp_min(LOG_FLOOR);
            let ref_safe = ref_logp.clone().clamp_min(LOG_FLOOR);
            let kl = (p.clone() * (logp_safe.clone() - ref_safe)).sum_dim(1).mean(); // [1]
            let entropy = (p * logp_safe).sum_dim(1).mean().neg(); // [1]
            kl_value = kl.clone().into_scalar().elem::<f64>();
            entropy_value = entropy.clone().into_scalar().elem::<f64>();
            let loss = surrogate.mean().neg() + kl * settings.kl - entropy * settings.entropy;
            loss_value = loss.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        let names = reward.names();
        let mut term_sums = vec![0.0; names.len()];
        for r in &sampled {
            for (s, t) in term_sums.iter_mut().zip(&r.3) {
                *s += t;
            }
        }
        log.push(GrpoLog {
            iteration,
            mean_outcome: outcome_sum / sampled.len() as f64,
            loss: loss_value,
            mean_terms: names
                .into_iter()
                .zip(term_sums.into_iter().map(|s| s / sampled.len() as f64))
                .collect(),
            step_rewards: sampled.iter().flat_map(|r| r.1.iter().map(|s| s.3)).collect(),
            list_sizes: sampled.iter().map(|r| r.4 as f64).collect(),
            mean_advantage: adv_mean,
            std_advantage: adv_std,
            kl: kl_value,
            entropy: entropy_value,
            lr,
        });
        checkpoint::save_loop(checkpoint, &model, &optim, iteration, &rng, &log)?;
    }
    Ok((
        TrainedListPolicy::new(model.valid(), features, budget, Vec::new(), device.clone()),
        log,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_match_a_hand_computation() {
        // Outcomes 1, 3: mean 2, population std 1 -> normalised -1, +1.
        let steps = vec![vec![0.5, 0.5], vec![1.0, 2.0, 0.0]];
        let a = group_advantages(&[1.0, 3.0], &steps, 0.0);
        assert_eq!(a, vec![vec![-1.0, -1.0], vec![1.0, 1.0, 1.0]]);
        let a = group_advantages(&[1.0, 3.0], &steps, 0.5);
        assert_eq!(a, vec![vec![-0.75, -0.75], vec![1.5, 2.0, 1.0]]);
        // Equal outcomes carry no group signal; only the step rewards remain.
        let a = group_advantages(&[2.0, 2.0], &steps, 1.0);
        assert_eq!(a, vec![vec![0.5, 0.5], vec![1.0, 2.0, 0.0]]);
    }

    #[test]
    fn step_wise_with_lambda_zero_is_grpo() {
        let steps = vec![vec![0.3, -0.1], vec![0.2], vec![0.0, 0.4, 0.1]];
        let outcomes = [0.2, 0.2, 0.5];
        let grpo = group_advantages(&outcomes, &steps, 0.0);
        for (rollout, a) in grpo.iter().enumerate() {
            assert!(
                a.windows(2).all(|w| w[0] == w[1]),
                "one advantage per rollout: {rollout}"
            );
        }
        assert_eq!(group_advantages(&outcomes, &steps, 0.0), grpo);
    }

    #[test]
    fn the_schedule_warms_up_then_decays() {
        let s = GrpoSettings {
            iterations: 20,
            warmup: 4,
            lr: 1.0,
            ..GrpoSettings::default()
        };
        assert!((s.lr_at(1) - 0.25).abs() < 1e-12);
        assert!((s.lr_at(4) - 1.0).abs() < 1e-12);
        assert!(s.lr_at(10) < 1.0 && s.lr_at(10) > s.lr_at(15));
        assert!(s.lr_at(20).abs() < 1e-12);
    }
}
