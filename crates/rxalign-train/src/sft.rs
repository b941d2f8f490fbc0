//! Supervised fine-tuning of any policy family on expert decisions: from
//! each start list (a corrupted ground truth, FLAME's edit data, or the
//! run's own start lists) the expert follows the family's plan (by default
//! it removes the wrong drugs and adds the missing ones in increasing drug
//! index, then stops); the loss is the mean negative log-probability of the
//! expert decisions.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rxalign_core::{Action, DrugSet, Rng, seeded_rng};
use rxalign_env::StartList;
use rxalign_env::start::{CorruptedStart, CorruptedStartConfig, EditProfile};
use rxalign_policy::family::{Effect, PolicyFamily, State};
use serde::{Deserialize, Serialize};

use crate::data::PatientPart;
use crate::error::{at_least, non_negative, positive, rate};
use crate::job::Job;
use crate::learner::{LoopPlan, run_loop};
use crate::observer::{StepLog, TrainObserver};
use crate::parallel::{Combine, DataParallel, shard_rng};
use crate::select::{self, Select};
use crate::{TrainError, grpo};

/// Settings of SFT, as an experiment file gives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SftSettings {
    /// The method name the stage's rows, predictions and curves carry
    /// (default: the stage's kind), so that two such stages in one file do
    /// not overwrite each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Passes over the training decisions.
    pub epochs: usize,
    /// Decisions (not visits) per batch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Training starts are the ground truth corrupted with these rates
    /// (FLAME's edit data): each true drug missing with `miss_rate`, and
    /// `Binomial(|G|, extra_rate)` wrong drugs added.
    pub miss_rate: f64,
    /// See `miss_rate`: wrong drugs per true drug.
    pub extra_rate: f64,
    /// Probability that a corrupted start's wrong drug interacts with a
    /// true one (see `CorruptedStartConfig::interacting_extra_rate`).
    pub interacting_extra_rate: f64,
    /// Where the expert sequences start: `corrupted` ground truths, the
    /// run's start lists (`run`: after `start_from`, the classifier's lists,
    /// as FLAME trains its editor), one sequence from each (`both`), or
    /// ground truths corrupted with the errors of the run's start lists on
    /// the training patients (`fitted`: FLAME's edit data as published,
    /// the miss and extra rates and per-drug weights measured by the
    /// pipeline; `miss_rate`, `extra_rate` and `interacting_extra_rate` are
    /// then unused).
    pub starts: SftStarts,
    /// Greedy evaluation on the evaluation visits every this many epochs
    /// (and after the last); 0: only after training.
    pub eval_every: usize,
    /// The training patients it trains on: all (the default), or one part
    /// of several disjoint ones (`(part: 1, of: 2)`), so that SFT and GRPO
    /// can train on different patients.
    pub patients: PatientPart,
    /// Which epoch's model the stage hands on: `"last"` (the default) or
    /// `"validation"` (the best mean outcome reward of the greedy lists on
    /// the validation patients; needs `eval_every` > 0).
    pub select: Select,
    /// With `select: "validation"`: stop after this many evaluations
    /// without improvement (0: never early).
    pub patience: usize,
    /// Adam's L2 penalty on the parameters (0: none).
    pub weight_decay: f64,
}

impl Default for SftSettings {
    fn default() -> Self {
        Self {
            name: None,
            epochs: 10,
            batch_size: 256,
            lr: 2e-3,
            miss_rate: 0.5,
            extra_rate: 0.2,
            interacting_extra_rate: 0.0,
            starts: SftStarts::Corrupted,
            eval_every: 1,
            patients: PatientPart::default(),
            select: Select::Last,
            patience: 0,
            weight_decay: 0.0,
        }
    }
}

impl SftSettings {
    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        at_least("epochs", self.epochs, 1)?;
        at_least("batch_size", self.batch_size, 1)?;
        positive("lr", self.lr)?;
        rate("miss_rate", self.miss_rate)?;
        rate("extra_rate", self.extra_rate)?;
        rate("interacting_extra_rate", self.interacting_extra_rate)?;
        non_negative("weight_decay", self.weight_decay)?;
        select::validate(self.select, self.patience, self.eval_every)?;
        self.patients.validate()
    }
}

/// Where SFT's expert sequences start; written as a string in experiment
/// files (`"corrupted"`, `"run"`, `"both"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum SftStarts {
    Corrupted,
    Run,
    Both,
    Fitted,
}

impl TryFrom<String> for SftStarts {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "corrupted" => Ok(Self::Corrupted),
            "run" => Ok(Self::Run),
            "both" => Ok(Self::Both),
            "fitted" => Ok(Self::Fitted),
            other => Err(format!(
                "unknown SFT starts `{other}`; known: corrupted, run, both, fitted"
            )),
        }
    }
}

impl From<SftStarts> for String {
    fn from(s: SftStarts) -> String {
        match s {
            SftStarts::Corrupted => "corrupted",
            SftStarts::Run => "run",
            SftStarts::Both => "both",
            SftStarts::Fitted => "fitted",
        }
        .to_string()
    }
}

/// One SFT run.
pub type SftJob<'a> = Job<'a, SftSettings>;

/// One expert decision with its state: a visit, its list, the episode's
/// start and the effects of the expert's earlier decisions.
#[derive(Clone, Debug)]
struct Sample<D> {
    visit: usize,
    list: DrugSet,
    start: DrugSet,
    earlier: Vec<Effect>,
    decision: D,
}

/// The gradients of one SFT batch: the mean over its decisions of the
/// expert decision's negative log-probability (parts reduced as the family
/// says), and that loss. A family's random choices in training (the list
/// policy's dropout masks) are drawn from `rng`.
///
/// A batch split into shards gives the same gradients as the whole when
/// each shard's are weighted by its share of the decisions and summed (the
/// loss is a mean), and the family draws nothing from `rng` (no dropout);
/// with dropout, each shard's masks follow its own `rng`
/// (`tests::sharded_gradients_*`).
pub fn sft_gradients<F: PolicyFamily, B: AutodiffBackend>(
    family: &F,
    model: &F::Trainable<B>,
    cohort: &rxalign_core::Cohort,
    states: &[State<'_>],
    decisions: &[F::Decision],
    rng: &mut Rng,
    device: &B::Device,
) -> Result<(GradientsParams, f64), TrainError> {
    let scored = family.score_train(model, cohort, states, decisions, 1.0, rng, device)?;
    let logp = grpo::reduce(scored.logp, scored.mask, family.reduction()); // [batch, 1]
    let loss = logp.mean().neg(); // [1]
    let value = loss.clone().into_scalar().elem::<f64>();
    Ok((GradientsParams::from_grads(loss.backward(), model), value))
}

/// Trains a fresh model of `family` on expert decisions (fresh corruptions
/// each epoch, seeded), reporting each epoch to `observer`. Returns the
/// trained model (its `valid()` acts; it is the start and, frozen, the
/// reference of GRPO).
pub fn train_sft<F: PolicyFamily, B: AutodiffBackend>(
    family: &F,
    job: &SftJob<'_>,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<F::Trainable<B>, TrainError> {
    train_sft_on(family, job, observer, &DataParallel::single(device))
}

/// [`train_sft`] with each batch sharded over `parallel`'s devices (data
/// parallel: each shard's gradients on its device, weighted by its share
/// of the batch, summed, one optimizer step on the first device; see
/// [`crate::parallel`]). Each shard's random choices (dropout masks) come
/// from a stream of its own ([`shard_rng`]); with one device the epoch is
/// exactly [`train_sft`]'s.
pub fn train_sft_on<F: PolicyFamily, B: AutodiffBackend, C: Combine<B>>(
    family: &F,
    job: &SftJob<'_>,
    observer: &mut dyn TrainObserver,
    parallel: &DataParallel<B, C>,
) -> Result<F::Trainable<B>, TrainError> {
    let device = parallel.first();
    let settings = job.settings;
    settings.validate()?;
    let cohort = job.cohort;
    let model = F::into_trainable::<B>(family.init(&mut seeded_rng(job.seed, "sft-init"), device)?);
    let optim = AdamConfig::new()
        .with_weight_decay(
            (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32)),
        )
        .init();
    let (corrupt, profile) = if settings.starts == SftStarts::Fitted {
        let (corrupt, profile) = fitted_corruption(job)?;
        (corrupt, Some(profile))
    } else {
        let corrupt = CorruptedStartConfig {
            miss_rate: settings.miss_rate,
            extra_rate: settings.extra_rate,
            interacting_extra_rate: settings.interacting_extra_rate,
            ..CorruptedStartConfig::default()
        }
        .init(cohort)?;
        (corrupt, None)
    };
    let plan = LoopPlan {
        stream: "sft-data",
        last: settings.epochs,
        select: settings.select,
        patience: settings.patience,
        start_is_candidate: false,
    };
    let mut replicas = parallel.replicas();
    let epoch = |mut model: F::Trainable<B>,
                 optim: &mut _,
                 rng: &mut Rng,
                 epoch: usize,
                 _: &mut dyn TrainObserver| {
        let episodes = expert_samples(family, job, &corrupt, rng)?;
        let (samples, batches) = batches(
            episodes,
            settings.batch_size,
            family.scores_episodes_together(),
            rng,
        );
        let mut total = 0.0;
        for (batch, range) in batches.into_iter().enumerate() {
            let chunk = &samples[range];
            let states: Vec<State<'_>> = chunk
                .iter()
                .map(|s| State {
                    visit: s.visit,
                    list: &s.list,
                    start: &s.start,
                    earlier: &s.earlier,
                })
                .collect();
            let decisions: Vec<F::Decision> = chunk.iter().map(|s| s.decision.clone()).collect();
            let (grads, parts) = replicas.gradients(&model, chunk.len(), |shard| {
                let mut own;
                let rng = if shard.sharded {
                    own = shard_rng(job.seed, "sft", epoch, batch, shard.index);
                    &mut own
                } else {
                    &mut *rng
                };
                let range = shard.range;
                let (grads, value) = sft_gradients(
                    family,
                    shard.model,
                    cohort,
                    &states[range.clone()],
                    &decisions[range],
                    rng,
                    shard.device,
                )?;
                Ok((Some(grads), value))
            })?;
            // The batch's mean loss: the shards' means, weighted.
            let value: f64 = parts.iter().map(|(weight, value)| weight * value).sum();
            let grads = grads.ok_or_else(|| TrainError::Invalid("SFT: a shard gave no gradients".into()))?;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    stage: "SFT",
                    unit: "epoch",
                    step: epoch,
                    what: format!("the loss ({value}) is"),
                    hint: "try a smaller `lr`",
                });
            }
            total += value * chunk.len() as f64;
            model = Optimizer::step(optim, settings.lr, model, grads);
            replicas.stepped(&model);
        }
        let mut entry = StepLog {
            step: epoch,
            ..StepLog::default()
        };
        entry
            .train
            .insert("loss/sft".into(), total / samples.len().max(1) as f64);
        if let Some(profile) = &profile {
            // The measured error profile the corruptions follow.
            entry
                .train
                .insert("edit_data/miss_rate".into(), profile.miss_rate());
            entry
                .train
                .insert("edit_data/extra_rate".into(), profile.extra_rate());
        }
        Ok((model, entry))
    };
    run_loop(family, job, plan, model, optim, epoch, observer, device)
}

/// The corruption that follows the errors of the run's start lists on the
/// training visits (drawn once, from a generator of their own, so that the
/// loop's generator and a resumed loop are unaffected).
fn fitted_corruption(job: &SftJob<'_>) -> Result<(CorruptedStart, EditProfile), TrainError> {
    let mut rng = seeded_rng(job.seed, "sft-fitted-starts");
    let starts = job
        .train
        .iter()
        .map(|&v| Ok((v, (job.starts)(v, &mut rng).map_err(TrainError::Invalid)?)))
        .collect::<Result<Vec<(usize, DrugSet)>, TrainError>>()?;
    Ok(CorruptedStart::fitted(
        job.cohort,
        starts.iter().map(|(v, s)| (*v, s)),
    ))
}

/// Every state of every expert sequence of an epoch, with the family's
/// expert decision: one corrupted start and/or the run's start per training
/// visit, walked through the family's [`PolicyFamily::expert_plan`].
fn expert_samples<F: PolicyFamily>(
    family: &F,
    job: &SftJob<'_>,
    corrupt: &CorruptedStart,
    rng: &mut Rng,
) -> Result<Vec<Vec<Sample<F::Decision>>>, TrainError> {
    let cohort = job.cohort;
    let mut episodes = Vec::new();
    for &v in job.train {
        let truth = &cohort.visits[v].drugs;
        let mut starts = Vec::with_capacity(2);
        if job.settings.starts != SftStarts::Run {
            starts.push(corrupt.start(cohort, v, rng)?);
        }
        if matches!(job.settings.starts, SftStarts::Run | SftStarts::Both) {
            starts.push((job.starts)(v, rng).map_err(TrainError::Invalid)?);
        }
        for start in starts {
            let mut list = start.clone();
            let mut earlier = Vec::new();
            let mut samples = Vec::new();
            for action in family.expert_plan(&start, truth) {
                let decision = family.expert(
                    State {
                        visit: v,
                        list: &list,
                        start: &start,
                        earlier: &earlier,
                    },
                    action,
                    cohort,
                );
                let effect = family.effect(&decision, cohort);
                samples.push(Sample {
                    visit: v,
                    list: list.clone(),
                    start: start.clone(),
                    earlier: earlier.clone(),
                    decision,
                });
                match effect {
                    Effect::Act(Action::Add(d)) => {
                        list.insert(d);
                    }
                    Effect::Act(Action::Remove(d)) => {
                        list.remove(d);
                    }
                    _ => {}
                }
                earlier.push(effect);
            }
            episodes.push(samples);
        }
    }
    Ok(episodes)
}

/// One epoch's samples in training order and its batches (ranges of
/// them). By default the decisions are shuffled one by one and cut into
/// `batch_size` pieces; `by_episode` shuffles whole episodes instead and
/// fills each batch with whole episodes, closing it before it would pass
/// `batch_size` decisions (an episode longer than that is a batch alone).
fn batches<D>(
    episodes: Vec<Vec<Sample<D>>>,
    batch_size: usize,
    by_episode: bool,
    rng: &mut Rng,
) -> (Vec<Sample<D>>, Vec<std::ops::Range<usize>>) {
    if !by_episode {
        let mut samples: Vec<Sample<D>> = episodes.into_iter().flatten().collect();
        samples.shuffle(rng);
        let n = samples.len();
        let ranges = (0..n)
            .step_by(batch_size.max(1))
            .map(|a| a..(a + batch_size).min(n))
            .collect();
        return (samples, ranges);
    }
    let mut episodes = episodes;
    episodes.shuffle(rng);
    let mut samples = Vec::new();
    let mut ranges = Vec::new();
    let mut begin = 0;
    for episode in episodes {
        let len = samples.len();
        if len > begin && len - begin + episode.len() > batch_size {
            ranges.push(begin..len);
            begin = len;
        }
        samples.extend(episode);
    }
    if samples.len() > begin {
        ranges.push(begin..samples.len());
    }
    (samples, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Episode `e` of `len` decisions, each decision its (episode, step).
    fn episodes(lens: &[usize]) -> Vec<Vec<Sample<(usize, usize)>>> {
        lens.iter()
            .enumerate()
            .map(|(e, &len)| {
                (0..len)
                    .map(|k| Sample {
                        visit: e,
                        list: DrugSet::empty(1),
                        start: DrugSet::empty(1),
                        earlier: Vec::new(),
                        decision: (e, k),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn batches_by_episode_keep_each_episode_whole_and_in_order() {
        let lens = [3, 1, 4, 1, 5, 9, 2, 6];
        let (samples, ranges) = batches(episodes(&lens), 6, true, &mut seeded_rng(0, "t"));
        assert_eq!(samples.len(), lens.iter().sum::<usize>());
        // The batches tile the samples.
        let mut next = 0;
        for r in &ranges {
            assert_eq!(r.start, next);
            next = r.end;
            let batch = &samples[r.clone()];
            // Whole episodes, each in step order; over the size only alone.
            let mut seen: Vec<usize> = batch.iter().map(|s| s.decision.0).collect();
            seen.dedup();
            for e in &seen {
                let steps: Vec<usize> = batch
                    .iter()
                    .filter(|s| s.decision.0 == *e)
                    .map(|s| s.decision.1)
                    .collect();
                assert_eq!(steps, (0..lens[*e]).collect::<Vec<_>>());
            }
            assert!(batch.len() <= 6 || seen.len() == 1, "{seen:?}");
        }
        assert_eq!(next, samples.len());
        // Episodes are shuffled, not kept in their order.
        let order: Vec<usize> = samples.iter().map(|s| s.decision.0).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_ne!(order, sorted);
    }

    #[test]
    fn batches_by_decision_shuffle_decisions_as_before() {
        let lens = [3, 1, 4];
        let (samples, ranges) = batches(episodes(&lens), 3, false, &mut seeded_rng(0, "t"));
        // The same order as shuffling the flat list with the same generator.
        let mut flat: Vec<(usize, usize)> = episodes(&lens)
            .into_iter()
            .flatten()
            .map(|s| s.decision)
            .collect();
        flat.shuffle(&mut seeded_rng(0, "t"));
        assert_eq!(samples.iter().map(|s| s.decision).collect::<Vec<_>>(), flat);
        assert_eq!(ranges, vec![0..3, 3..6, 6..8]);
    }
}
