//! Supervised fine-tuning of the list policy on expert edit sequences, and
//! greedy decoding.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rxalign_core::{Action, Cohort, DrugSet, Rng, seeded_rng};
use rxalign_env::StartList;
use rxalign_env::start::CorruptedStartConfig;
use rxalign_env::trajectory::expert_actions;
use serde::{Deserialize, Serialize};

use super::{ActionPolicy, ListPolicy, ListPolicyConfig, StateBatch};
use crate::PolicyError;
use crate::checkpoint;
use crate::classifier::VisitFeatures;

/// Settings of SFT, as an experiment file gives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSettings {
    pub hidden: usize,
    pub epochs: usize,
    /// States (not visits) per batch.
    pub batch_size: usize,
    pub lr: f64,
    /// Training starts are the ground truth corrupted with these rates
    /// (FLAME's edit data): each true drug missing with `miss_rate`, and
    /// `Binomial(|G|, extra_rate)` wrong drugs added; the expert removes the
    /// extras and adds the misses in increasing drug index, then stops.
    pub miss_rate: f64,
    pub extra_rate: f64,
    /// Probability that a corrupted start's wrong drug interacts with a
    /// true one (see `CorruptedStartConfig::interacting_extra_rate`).
    pub interacting_extra_rate: f64,
    /// Where the expert sequences start: `corrupted` ground truths, the
    /// run's start lists (`run`: after `start_from`, the classifier's lists,
    /// as FLAME trains its editor), or one sequence from each (`both`).
    pub starts: SftStarts,
    /// At most this many edits when decoding.
    pub budget: usize,
}

/// Where SFT's expert sequences start; written as a string in experiment
/// files (`"corrupted"`, `"run"`, `"both"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SftStarts {
    Corrupted,
    Run,
    Both,
}

impl TryFrom<String> for SftStarts {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "corrupted" => Ok(Self::Corrupted),
            "run" => Ok(Self::Run),
            "both" => Ok(Self::Both),
            other => Err(format!(
                "unknown SFT starts `{other}`; known: corrupted, run, both"
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
        }
        .to_string()
    }
}

impl Default for SftSettings {
    fn default() -> Self {
        Self {
            hidden: 128,
            epochs: 10,
            batch_size: 256,
            lr: 2e-3,
            miss_rate: 0.5,
            extra_rate: 0.2,
            interacting_extra_rate: 0.0,
            starts: SftStarts::Corrupted,
            budget: 30,
        }
    }
}

impl SftSettings {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, message: &str| {
            Err(PolicyError::Config {
                field,
                message: message.to_string(),
            })
        };
        if self.hidden == 0 || self.epochs == 0 || self.batch_size == 0 || self.budget == 0 {
            return bad("hidden", "hidden, epochs, batch_size and budget must be positive");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        for (field, rate) in [
            ("miss_rate", self.miss_rate),
            ("extra_rate", self.extra_rate),
            ("interacting_extra_rate", self.interacting_extra_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return bad(field, "must lie in [0, 1]");
            }
        }
        Ok(())
    }
}

/// One decoded step: the action and its probability under the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeStep {
    pub action: Action,
    pub probability: f64,
}

/// A trained list policy.
#[derive(Debug)]
pub struct TrainedListPolicy<B: Backend> {
    pub model: ListPolicy<B>,
    pub features: VisitFeatures,
    pub budget: usize,
    /// Mean cross-entropy of the expert actions, per epoch.
    pub log: Vec<(usize, f64)>,
    device: B::Device,
}

/// Trains the list policy on expert edit sequences from corrupted starts of
/// the training visits (fresh corruptions each epoch, seeded). Returns the
/// policy for decoding and the trainable module (the start and reference of
/// the GRPO stages).
///
/// With `checkpoint`, the state after each epoch is written there, and a
/// checkpoint already there is resumed from (its epochs are not trained
/// again, and the same epochs follow as without the interruption).
#[expect(clippy::too_many_arguments, reason = "the inputs of one training run")]
pub fn train_sft<B: AutodiffBackend>(
    cohort: &Cohort,
    features: &VisitFeatures,
    train: &[usize],
    settings: &SftSettings,
    run_starts: &dyn Fn(usize, &mut Rng) -> Result<DrugSet, String>,
    seed: u64,
    checkpoint: Option<&Path>,
    device: &B::Device,
) -> Result<(TrainedListPolicy<B::InnerBackend>, ListPolicy<B>), PolicyError> {
    settings.validate()?;
    let features = features.clone();
    let model: ListPolicy<B> = ListPolicyConfig::for_features(&features, settings.hidden)
        .init(&mut seeded_rng(seed, "sft-init"), device);
    let optim = AdamConfig::new().init();
    let corrupt = CorruptedStartConfig {
        miss_rate: settings.miss_rate,
        extra_rate: settings.extra_rate,
        interacting_extra_rate: settings.interacting_extra_rate,
        ..CorruptedStartConfig::default()
    }
    .init(cohort)
    .map_err(|e| PolicyError::Invalid(e.to_string()))?;
    let (mut model, mut optim, mut rng, mut log, first) =
        checkpoint::resume(checkpoint, model, optim, seeded_rng(seed, "sft-data"), device)?;
    for epoch in first..=settings.epochs {
        // Every state of every expert sequence, with its expert action.
        let mut samples: Vec<(usize, DrugSet, usize)> = Vec::new();
        for &v in train {
            let truth = &cohort.visits[v].drugs;
            let mut starts = Vec::with_capacity(2);
            if settings.starts != SftStarts::Run {
                starts.push(
                    corrupt
                        .start(cohort, v, &mut rng)
                        .map_err(|e| PolicyError::Invalid(e.to_string()))?,
                );
            }
            if settings.starts != SftStarts::Corrupted {
                starts.push(run_starts(v, &mut rng).map_err(PolicyError::Invalid)?);
            }
            for mut list in starts {
                for action in expert_actions(&list, truth) {
                    samples.push((v, list.clone(), action.index(cohort.drug_count())));
                    match action {
                        Action::Add(d) => {
                            list.insert(d);
                        }
                        Action::Remove(d) => {
                            list.remove(d);
                        }
                        Action::Stop => {}
                    }
                }
            }
        }
        samples.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in samples.chunks(settings.batch_size) {
            let states: Vec<(usize, &DrugSet)> = chunk.iter().map(|(v, l, _)| (*v, l)).collect();
            let batch = StateBatch::<B>::new(&features, cohort, &states, device);
            let targets: Vec<i64> = chunk.iter().map(|(_, _, a)| *a as i64).collect();
            let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [chunk.len(), 1]), device);
            let logp = model.log_probs(batch, 1.0); // [chunk, actions]
            let loss = logp.gather(1, targets).mean().neg(); // [1]
            total += loss.clone().into_scalar().elem::<f64>() * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(settings.lr, model, grads);
        }
        log.push((epoch, total / samples.len().max(1) as f64));
        checkpoint::save_loop(checkpoint, &model, &optim, epoch, &rng, &log)?;
    }
    let trained = TrainedListPolicy::new(model.valid(), features, settings.budget, log, device.clone());
    Ok((trained, model))
}

impl<B: Backend> TrainedListPolicy<B> {
    pub fn new(
        model: ListPolicy<B>,
        features: VisitFeatures,
        budget: usize,
        log: Vec<(usize, f64)>,
        device: B::Device,
    ) -> Self {
        Self {
            model,
            features,
            budget,
            log,
            device,
        }
    }

    /// Greedy decoding from the given starts: each visit takes its most
    /// probable valid action until `Stop` or the budget. Returns each final
    /// list with its steps.
    pub fn decode(
        &self,
        cohort: &Cohort,
        visits: &[usize],
        starts: Vec<DrugSet>,
    ) -> Vec<(DrugSet, Vec<DecodeStep>)> {
        let drugs = cohort.drug_count();
        let mut out: Vec<(DrugSet, Vec<DecodeStep>)> = starts.into_iter().map(|s| (s, Vec::new())).collect();
        let mut active: Vec<usize> = (0..visits.len()).collect();
        for _ in 0..self.budget {
            if active.is_empty() {
                break;
            }
            let mut still = Vec::with_capacity(active.len());
            for chunk in active.chunks(512) {
                let states: Vec<(usize, &DrugSet)> = chunk.iter().map(|&i| (visits[i], &out[i].0)).collect();
                let batch = StateBatch::<B>::new(&self.features, cohort, &states, &self.device);
                let chosen = self.model.greedy(batch);
                for (&i, (slot, prob)) in chunk.iter().zip(chosen) {
                    let action = Action::from_index(slot, drugs);
                    match action {
                        Action::Add(d) => {
                            out[i].0.insert(d);
                        }
                        Action::Remove(d) => {
                            out[i].0.remove(d);
                        }
                        Action::Stop => {}
                    }
                    out[i].1.push(DecodeStep {
                        action,
                        probability: f64::from(prob),
                    });
                    if action != Action::Stop {
                        still.push(i);
                    }
                }
            }
            active = still;
        }
        out
    }
}
