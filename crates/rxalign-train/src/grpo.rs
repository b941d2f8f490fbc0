//! GRPO and step-wise GRPO (FLAME Eq. 6) over any policy family.
//!
//! For each visit a group of `G` rollouts is sampled from the policy; the
//! advantage of step `t` of rollout `i` is
//! `A_{i,t} = (R_i − mean R) / std R + λ · r_{i,t}`, where `R_i` is the
//! outcome reward `Phi(S_T) − Phi(S_0)` and `r_{i,t}` the step's shaped
//! reward `Phi(S_{t+1}) − Phi(S_t)`; `λ = 0` is plain GRPO. A step's
//! advantage applies to every part of its decision (every token of a
//! generated line). The loss is the PPO-clipped policy gradient per part,
//! plus `kl` times the KL divergence to the frozen reference (exact or k3,
//! [`crate::kl`]), minus `entropy` times the entropy; the learning rate
//! warms up linearly and decays on a cosine; gradients are clipped by norm.
//!
//! An iteration is four steps: [`collect`] rollouts, [`advantages`],
//! [`update`] the model, and log.

use std::collections::BTreeMap;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::IndexedRandom;
use rxalign_core::{DrugSet, Rng};
use rxalign_env::Reward;
use rxalign_policy::family::{ActMode, Effect, PartReduction, PolicyFamily, Scored, State};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::data::PatientPart;
use crate::episodes::{EpisodeResult, Episodes};
use crate::error::{at_least, non_negative, positive};
use crate::job::Job;
use crate::kl::{self, KlEstimator};
use crate::learner::{LoopPlan, run_loop};
use crate::observer::{StepLog, Throughput, TrainObserver};
use crate::parallel::{Combine, DataParallel, Replicas};
use crate::select::{self, Select};

/// Settings of (step-wise) GRPO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoSettings {
    /// The method name the stage's rows, predictions and curves carry
    /// (default: the stage's kind), so that two such stages in one file do
    /// not overwrite each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Updates, each on a fresh batch of rollouts.
    pub iterations: usize,
    /// Training visits per iteration.
    pub visits: usize,
    /// Rollouts per visit.
    pub group: usize,
    /// Adam's learning rate (the peak of the schedule).
    pub lr: f64,
    /// λ: the weight of each step's shaped reward; unset means 0 for `grpo`
    /// and FLAME's 0.5 for `step_grpo`. Written as a plain number.
    #[serde(deserialize_with = "some_number", skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<f64>,
    /// Weight of the KL divergence to the frozen SFT policy.
    pub kl: f64,
    /// The KL estimator of the loss: `"exact"` (the family must enumerate
    /// its choices) or `"k3"`; unset: exact where the family can, else k3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_estimator: Option<KlEstimator>,
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
    /// Greedy evaluation on the evaluation visits every this many
    /// iterations (and after the last); 0: only after training.
    pub eval_every: usize,
    /// The training patients it trains on: all (the default), or one part
    /// of several disjoint ones (`(part: 1, of: 2)`), so that SFT and GRPO
    /// can train on different patients.
    pub patients: PatientPart,
    /// Stop after this iteration, the schedule still spanning `iterations`
    /// (a run cut short on purpose; its checkpoint resumes later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_after: Option<usize>,
    /// Which iteration's model the stage hands on: `"last"` (the default)
    /// or `"validation"` (the best mean outcome reward of the greedy lists
    /// on the validation patients among the evaluated iterations and the
    /// start, iteration 0; needs `eval_every` > 0).
    pub select: Select,
    /// With `select: "validation"`: stop after this many evaluations
    /// without improvement (0: never early).
    pub patience: usize,
    /// Adam's L2 penalty on the parameters (0: none).
    pub weight_decay: f64,
}

fn some_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(d).map(Some)
}

impl Default for GrpoSettings {
    fn default() -> Self {
        Self {
            name: None,
            iterations: 60,
            visits: 32,
            group: 8,
            lr: 2e-4,
            step_weight: None,
            kl: 0.02,
            kl_estimator: None,
            entropy: 0.0,
            clip: 0.2,
            ppo_epochs: 1,
            warmup: 5,
            grad_norm: 1.0,
            temperature: 1.0,
            eval_every: 10,
            patients: PatientPart::default(),
            stop_after: None,
            select: Select::Last,
            patience: 0,
            weight_decay: 0.0,
        }
    }
}

impl GrpoSettings {
    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        at_least("iterations", self.iterations, 1)?;
        at_least("visits", self.visits, 1)?;
        at_least("group", self.group, 2)?;
        at_least("ppo_epochs", self.ppo_epochs, 1)?;
        positive("lr", self.lr)?;
        positive("temperature", self.temperature)?;
        positive("grad_norm", self.grad_norm)?;
        non_negative("kl", self.kl)?;
        non_negative("entropy", self.entropy)?;
        non_negative("clip", self.clip)?;
        non_negative("step_weight", self.lambda())?;
        non_negative("weight_decay", self.weight_decay)?;
        select::validate(self.select, self.patience, self.eval_every)?;
        if self.stop_after.is_some() && self.select == Select::Validation {
            // A run cut short resumes from its last model, while selection
            // hands on (and checkpoints) the chosen one.
            return Err(TrainError::Config {
                field: "stop_after",
                message: "cannot cut short a stage that selects by validation".into(),
            });
        }
        self.patients.validate()
    }

    /// λ, 0 when unset.
    pub fn lambda(&self) -> f64 {
        self.step_weight.unwrap_or(0.0)
    }

    /// The last iteration this run trains.
    pub fn last(&self) -> usize {
        self.stop_after
            .map_or(self.iterations, |s| s.min(self.iterations))
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

/// One GRPO run.
pub type GrpoJob<'a> = Job<'a, GrpoSettings>;

/// A sampled decision with its advantage: what the update trains on.
#[derive(Clone, Debug)]
pub struct Sample<D> {
    pub visit: usize,
    pub list: DrugSet,
    /// The episode's start list and the effects of its earlier decisions
    /// (the rest of the decision's [`State`]).
    pub start: DrugSet,
    pub earlier: Vec<Effect>,
    pub decision: D,
    /// `log π_old(part)` of every part, as sampled.
    pub old_parts: Vec<f32>,
    pub advantage: f64,
}

/// What one update did: the loss and its KL and entropy terms (the last
/// PPO epoch's), with every KL estimate the family allows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateStats {
    pub loss: f64,
    pub kl: f64,
    pub kl_exact: Option<f64>,
    pub kl_k3: f64,
    pub entropy: f64,
}

/// Aligns `policy` (the SFT model) with (step-wise) GRPO, with the frozen
/// `policy` as the KL reference, reporting each iteration to `observer`.
/// Returns the aligned model.
pub fn train_grpo<F: PolicyFamily, B: AutodiffBackend>(
    family: &F,
    policy: F::Trainable<B>,
    job: &GrpoJob<'_>,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<F::Model<B::InnerBackend>, TrainError> {
    train_grpo_on(family, policy, job, observer, &DataParallel::single(device))
}

/// [`train_grpo`] with each update sharded over `parallel`'s devices (data
/// parallel: each shard's gradients on its device against a copy of the
/// reference there, weighted by its share of the samples, summed, one
/// optimizer step on the first device; see [`crate::parallel`]). Rollouts
/// and evaluations run on the first device. With one device it is exactly
/// [`train_grpo`].
pub fn train_grpo_on<F: PolicyFamily, B: AutodiffBackend, C: Combine<B>>(
    family: &F,
    policy: F::Trainable<B>,
    job: &GrpoJob<'_>,
    observer: &mut dyn TrainObserver,
    parallel: &DataParallel<B, C>,
) -> Result<F::Model<B::InnerBackend>, TrainError> {
    let device = parallel.first();
    let settings = job.settings;
    settings.validate()?;
    if job.train.is_empty() {
        return Err(TrainError::Invalid("GRPO: the training visits are empty".into()));
    }
    let reference = policy.valid();
    // The frozen reference on every device (the first's is the original).
    let references: Vec<F::Model<B::InnerBackend>> = parallel
        .devices()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if i == 0 {
                reference.clone()
            } else {
                reference.clone().fork(d)
            }
        })
        .collect();
    drop(reference);
    let mut replicas = parallel.replicas();
    let optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(settings.grad_norm as f32)))
        .with_weight_decay(
            (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32)),
        )
        .init();
    let last = settings.last();
    let plan = LoopPlan {
        stream: "grpo",
        last,
        select: settings.select,
        patience: settings.patience,
        start_is_candidate: true,
    };
    let diverged = |e: TrainError, iteration| {
        e.diverged_if_non_finite(
            "GRPO",
            "iteration",
            iteration,
            "try a smaller `lr`, a smaller `grad_norm` or a larger `kl`",
        )
    };
    let iteration = |model: F::Trainable<B>,
                     optim: &mut _,
                     rng: &mut Rng,
                     iteration: usize,
                     observer: &mut dyn TrainObserver| {
        let started = std::time::Instant::now();
        let rollouts =
            collect(family, &model.valid(), job, rng, device).map_err(|e| diverged(e, iteration))?;
        let rollout_time = started.elapsed();
        let samples = advantages(&rollouts, settings);
        let lr = settings.lr_at(iteration);
        let started = std::time::Instant::now();
        let (model, stats) = update_sharded(
            family,
            model,
            optim,
            &mut replicas,
            &references,
            &samples,
            job,
            lr,
        )
        .map_err(|e| diverged(e, iteration))?;
        observer
            .throughput(&Throughput {
                iteration,
                rollouts: rollouts.len(),
                rollout_time,
                parts: samples.iter().map(|s| s.old_parts.len()).sum(),
                epochs: if samples.is_empty() {
                    0
                } else {
                    settings.ppo_epochs
                },
                update_time: started.elapsed(),
            })
            .map_err(TrainError::Observer)?;
        if !stats.loss.is_finite() {
            return Err(TrainError::Diverged {
                stage: "GRPO",
                unit: "iteration",
                step: iteration,
                what: format!("the loss ({}) is", stats.loss),
                hint: "try a smaller `lr`, a smaller `grad_norm` or a larger `kl`",
            });
        }
        let entry = iteration_log(
            iteration,
            settings.group,
            &rollouts,
            &samples,
            &stats,
            lr,
            job.reward,
        );
        Ok((model, entry))
    };
    let chosen = run_loop(family, job, plan, policy, optim, iteration, observer, device)?;
    Ok(chosen.valid())
}

/// Collect: draws `visits` training visits and samples a group of rollouts
/// from each one's start list, all in lockstep.
pub fn collect<F: PolicyFamily, B: Backend>(
    family: &F,
    model: &F::Model<B>,
    job: &GrpoJob<'_>,
    rng: &mut Rng,
    device: &B::Device,
) -> Result<Vec<EpisodeResult<F::Decision>>, TrainError> {
    let settings = job.settings;
    let mut visits = Vec::with_capacity(settings.visits);
    for _ in 0..settings.visits {
        visits.push(
            *job.train
                .choose(rng)
                .ok_or_else(|| TrainError::Invalid("no training visits".into()))?,
        );
    }
    let mut starts = Vec::with_capacity(visits.len() * settings.group);
    for &v in &visits {
        let start = (job.starts)(v, rng).map_err(TrainError::Invalid)?;
        starts.extend(std::iter::repeat_n((v, start), settings.group));
    }
    Episodes {
        cohort: job.cohort,
        reward: job.reward,
        budget: job.budget,
        mode: ActMode::Sample {
            temperature: settings.temperature,
        },
        max_batch: None,
        record: None,
    }
    .run(family, model, starts, rng, device)
}

/// Advantages: FLAME's advantage of every step of every rollout, group by
/// group (rollouts come in groups of `group`, as [`collect`] makes them).
pub fn advantages<D: Clone>(rollouts: &[EpisodeResult<D>], settings: &GrpoSettings) -> Vec<Sample<D>> {
    let mut samples = Vec::new();
    for group in rollouts.chunks(settings.group) {
        let outcomes: Vec<f64> = group.iter().map(|r| r.outcome).collect();
        let steps: Vec<Vec<f64>> = group
            .iter()
            .map(|r| r.steps.iter().map(|s| s.reward).collect())
            .collect();
        for (rollout, adv) in group
            .iter()
            .zip(group_advantages(&outcomes, &steps, settings.lambda()))
        {
            for (t, (step, a)) in rollout.steps.iter().zip(adv).enumerate() {
                if step.acted.parts.is_empty() {
                    // A decision the family forced (no part was chosen by
                    // the policy): nothing to train.
                    continue;
                }
                samples.push(Sample {
                    visit: rollout.visit,
                    list: step.list_before.clone(),
                    start: rollout.start.clone(),
                    earlier: rollout.steps[..t].iter().map(|s| s.effect.clone()).collect(),
                    decision: step.acted.decision.clone(),
                    old_parts: step.acted.parts.clone(),
                    advantage: a,
                });
            }
        }
    }
    samples
}

/// Every part's advantage, row-major `[samples, parts]`: each part (token)
/// of a decision (line) carries its step's advantage; padding carries 0 (it
/// is masked out anyway). A line's end-of-answer token is a decision of its
/// own whose shaped reward is 0, so it carries the group-normalised outcome
/// alone.
pub fn token_advantages<D>(samples: &[Sample<D>], parts: usize) -> Vec<f32> {
    samples
        .iter()
        .flat_map(|s| {
            (0..parts).map(move |k| {
                if k < s.old_parts.len() {
                    s.advantage as f32
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// Update: `ppo_epochs` gradient steps of the clipped surrogate with its KL
/// and entropy terms on `samples`, at learning rate `lr` (each step's
/// gradients from [`update_gradients`]).
#[expect(clippy::too_many_arguments, reason = "the inputs of one update")]
pub fn update<F: PolicyFamily, B: AutodiffBackend, O: Optimizer<F::Trainable<B>, B>>(
    family: &F,
    model: F::Trainable<B>,
    optim: &mut O,
    reference: &F::Model<B::InnerBackend>,
    samples: &[Sample<F::Decision>],
    job: &GrpoJob<'_>,
    lr: f64,
    device: &B::Device,
) -> Result<(F::Trainable<B>, UpdateStats), TrainError> {
    let parallel = DataParallel::single(device);
    let mut replicas = parallel.replicas();
    let references = std::slice::from_ref(reference);
    update_sharded(family, model, optim, &mut replicas, references, samples, job, lr)
}

/// [`update`] with the samples of each gradient step sharded over the
/// devices of `replicas` (`references[i]`: the frozen reference on device
/// `i`).
#[expect(clippy::too_many_arguments, reason = "the inputs of one update")]
pub fn update_sharded<F, B, C, O>(
    family: &F,
    mut model: F::Trainable<B>,
    optim: &mut O,
    replicas: &mut Replicas<'_, B, C, F::Trainable<B>>,
    references: &[F::Model<B::InnerBackend>],
    samples: &[Sample<F::Decision>],
    job: &GrpoJob<'_>,
    lr: f64,
) -> Result<(F::Trainable<B>, UpdateStats), TrainError>
where
    F: PolicyFamily,
    B: AutodiffBackend,
    C: Combine<B>,
    O: Optimizer<F::Trainable<B>, B>,
{
    let mut stats = UpdateStats::default();
    if samples.is_empty() {
        return Ok((model, stats));
    }
    for _ in 0..job.settings.ppo_epochs {
        let (grads, parts) = replicas.gradients(&model, samples.len(), |shard| {
            update_gradients(
                family,
                shard.model,
                &references[shard.index],
                &samples[shard.range],
                job,
                shard.device,
            )
        })?;
        stats = UpdateStats::weighted(&parts);
        let Some(grads) = grads else {
            return Ok((model, stats));
        };
        model = optim.step(lr, model, grads);
        replicas.stepped(&model);
    }
    Ok((model, stats))
}

impl UpdateStats {
    /// The statistics of a sharded update from its shards' (each a mean
    /// over its samples) weighted by their shares of the samples; one
    /// shard's are its own.
    fn weighted(parts: &[(f64, UpdateStats)]) -> UpdateStats {
        if let [(_, only)] = parts {
            return only.clone();
        }
        let sum = |f: &dyn Fn(&UpdateStats) -> f64| parts.iter().map(|(w, s)| w * f(s)).sum::<f64>();
        UpdateStats {
            loss: sum(&|s| s.loss),
            kl: sum(&|s| s.kl),
            kl_exact: parts
                .iter()
                .map(|(w, s)| s.kl_exact.map(|k| w * k))
                .sum::<Option<f64>>(),
            kl_k3: sum(&|s| s.kl_k3),
            entropy: sum(&|s| s.entropy),
        }
    }
}

/// The gradients of one gradient step of the update on `samples` (the
/// clipped surrogate, the KL to `reference` and the entropy bonus, each a
/// mean over the samples), and its statistics; no gradients where the loss
/// is not finite. The reference scores the samples on each call.
///
/// A batch of samples split into shards gives the same gradients as the
/// whole when each shard's are weighted by its share of the samples and
/// summed (every term is a mean over samples; `tests::sharded_gradients_*`).
pub fn update_gradients<F: PolicyFamily, B: AutodiffBackend>(
    family: &F,
    model: &F::Trainable<B>,
    reference: &F::Model<B::InnerBackend>,
    samples: &[Sample<F::Decision>],
    job: &GrpoJob<'_>,
    device: &B::Device,
) -> Result<(Option<GradientsParams>, UpdateStats), TrainError> {
    let settings = job.settings;
    let n = samples.len();
    if n == 0 {
        return Ok((None, UpdateStats::default()));
    }
    let cohort = job.cohort;
    let states: Vec<State<'_>> = samples
        .iter()
        .map(|s| State {
            visit: s.visit,
            list: &s.list,
            start: &s.start,
            earlier: &s.earlier,
        })
        .collect();
    let decisions: Vec<F::Decision> = samples.iter().map(|s| s.decision.clone()).collect();
    let parts = samples
        .iter()
        .map(|s| s.old_parts.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let padded = |f: &dyn Fn(&Sample<F::Decision>, usize) -> f32| -> Vec<f32> {
        samples
            .iter()
            .flat_map(|s| (0..parts).map(move |k| f(s, k)))
            .collect()
    };
    let old = Tensor::<B, 2>::from_data(
        TensorData::new(
            padded(&|s, k| s.old_parts.get(k).copied().unwrap_or(0.0)),
            [n, parts],
        ),
        device,
    );
    let adv = Tensor::<B, 2>::from_data(
        TensorData::new(token_advantages(samples, parts), [n, parts]),
        device,
    );
    let reference = family.score_reference(
        reference,
        cohort,
        &states,
        &decisions,
        settings.temperature,
        device,
    )?;
    let ref_logp = Tensor::<B, 2>::from_inner(reference.logp);
    let ref_dist = reference.distribution.map(Tensor::<B, 3>::from_inner);
    let estimator = match (settings.kl_estimator, &ref_dist) {
        (Some(KlEstimator::Exact), None) => {
            return Err(TrainError::Config {
                field: "kl_estimator",
                message: format!(
                    "the `{}` policy cannot enumerate its choices; use \"k3\"",
                    family.kind()
                ),
            });
        }
        (Some(k), _) => k,
        (None, Some(_)) => KlEstimator::Exact,
        (None, None) => KlEstimator::K3,
    };
    let reduction = family.reduction();
    let mut stats = UpdateStats::default();
    let Scored {
        logp,
        mask,
        distribution,
    } = family.score(
        F::as_model(model),
        cohort,
        &states,
        &decisions,
        settings.temperature,
        device,
    )?;
    // PPO ratios, clipping and the advantage per part (token).
    let ratio = (logp.clone() - old.clone()).exp(); // [n, parts]
    let clipped = ratio.clone().clamp(1.0 - settings.clip, 1.0 + settings.clip);
    let surrogate = (ratio * adv.clone()).min_pair(clipped * adv.clone()); // [n, parts]
    let surrogate = reduce(surrogate, mask.clone(), reduction); // [n, 1]
    let k3 = reduce(kl::k3(logp.clone(), ref_logp.clone()), mask.clone(), reduction).mean(); // [1]
    // The exact KL and the entropy share one `exp` of the distribution.
    let (exact, entropy) = match (distribution, ref_dist) {
        (Some(d), Some(r)) => {
            let (exact, entropy) = kl::exact_and_entropy(d, r); // [n, parts] each
            (
                Some(reduce(exact, mask.clone(), reduction).mean()),
                reduce(entropy, mask, reduction),
            )
        }
        (Some(d), None) => (None, reduce(kl::entropy(d), mask, reduction)),
        // The sampled parts' surprisal estimates the entropy.
        (None, _) => (None, reduce(logp.neg(), mask, reduction)),
    };
    let entropy = entropy.mean(); // [1]
    stats.kl_k3 = k3.clone().into_scalar().elem::<f64>();
    stats.kl_exact = exact.as_ref().map(|e| e.clone().into_scalar().elem::<f64>());
    let kl = match estimator {
        KlEstimator::Exact => exact.unwrap_or(k3),
        KlEstimator::K3 => k3,
    };
    stats.kl = kl.clone().into_scalar().elem::<f64>();
    stats.entropy = entropy.clone().into_scalar().elem::<f64>();
    let mut loss = surrogate.mean().neg() + kl * settings.kl;
    if settings.entropy != 0.0 {
        // Without a bonus the entropy is a statistic only: out of the loss,
        // nothing of it is differentiated (its gradient would be 0).
        loss = loss - entropy * settings.entropy;
    }
    stats.loss = loss.clone().into_scalar().elem::<f64>();
    if !stats.loss.is_finite() {
        return Ok((None, stats));
    }
    Ok((Some(GradientsParams::from_grads(loss.backward(), model)), stats))
}

/// Reduces per-part values to one per decision, padding left out.
///
/// # Shapes
/// - `values`, `mask`: `[batch, parts]`
/// - output: `[batch, 1]`
pub fn reduce<B: Backend>(values: Tensor<B, 2>, mask: Tensor<B, 2>, how: PartReduction) -> Tensor<B, 2> {
    let [_, parts] = values.dims();
    if parts == 1 {
        // One part per decision (no padding): the decision's own value.
        return values;
    }
    let summed = (values * mask.clone()).sum_dim(1);
    match how {
        PartReduction::Sum => summed,
        PartReduction::Mean => summed / mask.sum_dim(1).clamp_min(1.0),
    }
}

/// The log of an iteration: the rollouts' mean outcome and final reward
/// terms, the loss, the advantages' mean and std, KL, entropy, learning
/// rate, refusals, and the step rewards and list sizes for histograms.
fn iteration_log<D>(
    iteration: usize,
    group: usize,
    rollouts: &[EpisodeResult<D>],
    samples: &[Sample<D>],
    stats: &UpdateStats,
    lr: f64,
    reward: &Reward,
) -> StepLog {
    let r = rollouts.len().max(1) as f64;
    let n = samples.len().max(1) as f64;
    let adv_mean = samples.iter().map(|s| s.advantage).sum::<f64>() / n;
    let adv_std = (samples
        .iter()
        .map(|s| (s.advantage - adv_mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let mut train: BTreeMap<String, f64> = [
        ("loss/grpo", stats.loss),
        (
            "rollout/reward/outcome",
            // Summed group by group, as the advantages see them.
            rollouts
                .chunks(group.max(1))
                .map(|g| g.iter().map(|r| r.outcome).sum::<f64>())
                .sum::<f64>()
                / r,
        ),
        ("advantage/mean", adv_mean),
        ("advantage/std", adv_std),
        ("kl", stats.kl),
        ("kl/k3", stats.kl_k3),
        ("entropy", stats.entropy),
        ("lr", lr),
        (
            "refusal_rate",
            rollouts
                .iter()
                .flat_map(|r| &r.steps)
                .filter(|s| s.refused)
                .count() as f64
                / n,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(exact) = stats.kl_exact {
        train.insert("kl/exact".into(), exact);
    }
    for (k, name) in reward.names().into_iter().enumerate() {
        let mean = rollouts.iter().map(|r| r.final_terms[k]).sum::<f64>() / r;
        train.insert(format!("rollout/reward/{name}"), mean);
    }
    StepLog {
        step: iteration,
        train,
        evals: Vec::new(),
        histograms: [
            (
                "step_reward".to_string(),
                rollouts
                    .iter()
                    .flat_map(|r| r.steps.iter().map(|s| s.reward))
                    .collect(),
            ),
            (
                "list_size".to_string(),
                rollouts.iter().map(|r| r.final_list.len() as f64).collect(),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxalign_core::seeded_rng;

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
    }

    /// For a policy indifferent to length (its outcome does not depend on how
    /// many edits it makes before it stops), the credit an episode gets in
    /// the loss must not depend on its length, or step-wise GRPO would teach
    /// longer (or shorter) episodes for nothing. Every decision weighs the
    /// same in the update (the loss averages over decisions, not per
    /// episode), so an episode's credit is the sum of its decisions'
    /// advantages: `T · normalised outcome + λ · Σ shaped rewards`, whose
    /// shaped part telescopes to `λ · outcome`. Averaging an episode's
    /// advantages instead (per-step normalisation) would make it
    /// `normalised outcome + λ · outcome / T`: a bonus for short episodes
    /// whenever outcomes are positive on average, which the same check
    /// catches.
    #[test]
    fn step_wise_credit_gives_no_length_bonus() {
        use rand::Rng as _;
        let mut rng = seeded_rng(11, "length-bias");
        let lambda = 0.5;
        let (groups, group) = (60_000, 8);
        // Per length 1..=6: the episodes' credit, and the same averaged over
        // the episode's decisions.
        let mut credit: Vec<Vec<f64>> = vec![Vec::new(); 7];
        let mut averaged: Vec<Vec<f64>> = vec![Vec::new(); 7];
        for _ in 0..groups {
            let mut outcomes = Vec::new();
            let mut steps = Vec::new();
            for _ in 0..group {
                // Outcome independent of the length, positive on average;
                // the shaped step rewards telescope to it.
                let length = rng.random_range(1..=6usize);
                let outcome = 0.3 + rng.random_range(-1.0..1.0);
                let cuts: Vec<f64> = (0..length).map(|_| rng.random::<f64>()).collect();
                let total: f64 = cuts.iter().sum();
                steps.push(cuts.iter().map(|c| outcome * c / total).collect::<Vec<f64>>());
                outcomes.push(outcome);
            }
            for a in group_advantages(&outcomes, &steps, lambda) {
                let sum: f64 = a.iter().sum();
                credit[a.len()].push(sum);
                averaged[a.len()].push(sum / a.len() as f64);
            }
        }
        // Mean and 4 standard errors.
        let estimate = |x: &[f64]| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (mean, 4.0 * (var / n).sqrt())
        };
        for length in 1..=6 {
            // The expected credit is λ · E[outcome] = 0.15 at every length.
            let (mean, tolerance) = estimate(&credit[length]);
            assert!(
                (mean - lambda * 0.3).abs() < tolerance,
                "length {length}: mean credit {mean:.4} ± {tolerance:.4}, want {:.4}",
                lambda * 0.3
            );
            // Per-episode averaging would give λ · 0.3 / length instead.
            let (mean, tolerance) = estimate(&averaged[length]);
            assert!(
                (mean - lambda * 0.3 / length as f64).abs() < tolerance,
                "length {length}: averaged credit {mean:.4} ± {tolerance:.4}"
            );
        }
        let (short, _) = estimate(&averaged[1]);
        let (long, _) = estimate(&averaged[6]);
        assert!(
            short > long + 0.1,
            "per-episode averaging favours short episodes: {short} vs {long}"
        );
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

    #[test]
    fn parts_are_summed_or_averaged_without_the_padding() {
        use burn::backend::Flex;
        use burn::backend::flex::FlexDevice;
        let values = Tensor::<Flex, 2>::from_data([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0]], &FlexDevice);
        let mask = Tensor::<Flex, 2>::from_data([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], &FlexDevice);
        let sum: Vec<f32> = reduce(values.clone(), mask.clone(), PartReduction::Sum)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(sum, [3.0, 4.0]);
        let mean: Vec<f32> = reduce(values, mask, PartReduction::Mean)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(mean, [1.5, 4.0]);
    }
}
