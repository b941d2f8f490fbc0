//! Training the classifier: binary cross-entropy over drugs with Adam, the
//! threshold chosen on the validation split.

use burn::module::AutodiffModule;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rxalign_core::metrics::MetricReport;
use rxalign_core::{Cohort, Prediction, Predictions, seeded_rng};
use serde::{Deserialize, Serialize};

use super::model::DropoutMasks;
use super::{Batch, DrugClassifier, DrugClassifierConfig};
use rxalign_policy::PolicyError;
use rxalign_policy::features::VisitFeatures;
use rxalign_policy::threshold::{self, above, report};

/// Settings of classifier training, as an experiment file gives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierSettings {
    /// Width of the embedding bag and the hidden layer.
    pub hidden: usize,
    /// Passes over the training visits.
    pub epochs: usize,
    /// Visits per batch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Dropout on the embedding bag and the hidden layer while training.
    pub dropout: f64,
    /// Decoupled weight decay of Adam.
    pub weight_decay: f64,
    /// Thresholds tried on validation: from `step` to `1 − step` by `step`.
    pub threshold_step: f32,
    /// With `k ≥ 2`, the training visits' predictions are cross-fitted:
    /// the training patients are dealt into `k` folds, and each fold is
    /// predicted by a classifier trained on the other folds, so that lists
    /// built from them (SFT and GRPO starts) carry the mistakes the
    /// classifier makes on patients it has not seen, as on the test split.
    /// 0 (the default) predicts them with the classifier itself.
    pub cross_fit: usize,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self {
            hidden: 256,
            epochs: 30,
            batch_size: 64,
            lr: 2e-3,
            dropout: 0.3,
            weight_decay: 0.0,
            threshold_step: 0.05,
            cross_fit: 0,
        }
    }
}

impl ClassifierSettings {
    /// Most folds of [`Self::cross_fit`].
    pub const MAX_FOLDS: usize = 20;

    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, message: &str| {
            Err(PolicyError::Config {
                field,
                message: message.to_string(),
            })
        };
        if self.hidden == 0 {
            return bad("hidden", "must be positive");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", "must lie in [0, 1)");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", "must be a non-negative number");
        }
        if !(self.threshold_step > 0.0 && self.threshold_step < 0.5) {
            return bad("threshold_step", "must lie in (0, 0.5)");
        }
        if self.cross_fit == 1 {
            return bad("cross_fit", "needs at least 2 folds (0 turns it off)");
        }
        // Before the data is known: the hidden layer and one batch of it.
        let h = self.hidden as u128;
        rxalign_policy::device::check_memory(
            "classifier",
            "hidden",
            self.hidden,
            rxalign_policy::device::training_bytes(h * h + h, self.batch_size as u128 * h * 3),
        )?;
        if self.cross_fit > Self::MAX_FOLDS {
            return bad(
                "cross_fit",
                &format!(
                    "{} folds is more than {} (each fold trains a classifier of its own)",
                    self.cross_fit,
                    Self::MAX_FOLDS
                ),
            );
        }
        Ok(())
    }
}

/// One epoch: the mean training loss and the validation metrics at the
/// threshold 0.5.
#[derive(Clone, Debug)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub val: MetricReport,
}

/// A trained classifier with its threshold.
#[derive(Debug)]
pub struct TrainedClassifier<B: Backend> {
    pub model: DrugClassifier<B>,
    pub features: VisitFeatures,
    /// The threshold that maximised validation Jaccard.
    pub threshold: f32,
    /// The epoch kept: the one with the best validation Jaccard (at 0.5).
    pub best_epoch: usize,
    pub log: Vec<EpochLog>,
    device: B::Device,
}

/// The sigmoid score of every drug for each visit.
///
/// # Shapes
/// Returns `visits.len()` rows of `drugs` scores.
fn scores<B: Backend>(
    model: &DrugClassifier<B>,
    features: &VisitFeatures,
    cohort: &Cohort,
    visits: &[usize],
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let drugs = cohort.drug_count();
    let mut out = Vec::with_capacity(visits.len());
    for chunk in visits.chunks(512) {
        let batch = Batch::<B>::new(features, cohort, chunk, device);
        let probs = sigmoid(model.forward(batch.visits)); // [chunk, drugs]
        let flat: Vec<f32> = probs.into_data().convert::<f32>().to_vec().expect("float scores");
        out.extend(flat.chunks(drugs).map(<[f32]>::to_vec));
    }
    out
}

/// Trains the classifier on `train`, logging validation metrics each epoch,
/// keeps the epoch with the best validation Jaccard (early stopping) and
/// picks its threshold on `val`. The same seed gives the same model.
pub fn train_classifier<B: AutodiffBackend>(
    cohort: &Cohort,
    features: &VisitFeatures,
    train: &[usize],
    val: &[usize],
    settings: &ClassifierSettings,
    seed: u64,
    device: &B::Device,
) -> Result<TrainedClassifier<B::InnerBackend>, PolicyError> {
    train_classifier_with::<B>(cohort, features, train, val, settings, seed, device, &mut |_| {
        Ok(())
    })
}

/// [`train_classifier`], handing each epoch's log to `on_epoch` as soon as
/// the epoch ends (a run streams it to its metrics); an error from
/// `on_epoch` stops the training and is returned.
#[expect(clippy::too_many_arguments, reason = "the inputs of training, each distinct")]
pub fn train_classifier_with<B: AutodiffBackend>(
    cohort: &Cohort,
    features: &VisitFeatures,
    train: &[usize],
    val: &[usize],
    settings: &ClassifierSettings,
    seed: u64,
    device: &B::Device,
    on_epoch: &mut dyn FnMut(&EpochLog) -> Result<(), String>,
) -> Result<TrainedClassifier<B::InnerBackend>, PolicyError> {
    settings.validate()?;
    if train.is_empty() {
        return Err(PolicyError::Invalid("the training split is empty".into()));
    }
    // The whole network on this data, before anything is allocated.
    let (h, f, d) = (
        settings.hidden as u128,
        features.size() as u128,
        features.drugs as u128,
    );
    rxalign_policy::device::check_memory(
        "classifier",
        "hidden",
        settings.hidden,
        rxalign_policy::device::training_bytes(
            f * h + h * h + h + h * d + d,
            settings.batch_size as u128 * (f + 3 * h + d),
        ),
    )?;
    let features = features.clone();
    let mut init_rng = seeded_rng(seed, "classifier-init");
    let mut dropout_rng = seeded_rng(seed, "classifier-dropout");
    let mut model: DrugClassifier<B> =
        DrugClassifierConfig::for_features(&features, settings.hidden).init(&mut init_rng, device);
    let mut optim = AdamConfig::new()
        .with_weight_decay(
            (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32)),
        )
        .init();
    let loss_fn = BinaryCrossEntropyLossConfig::new().with_logits(true).init(device);
    let mut rng = seeded_rng(seed, "classifier-batches");
    let mut order = train.to_vec();
    let mut log = Vec::with_capacity(settings.epochs);
    let mut best_epoch: Option<(usize, f64, DrugClassifier<B::InnerBackend>)> = None;
    for epoch in 1..=settings.epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in order.chunks(settings.batch_size) {
            let batch = Batch::<B>::new(&features, cohort, chunk, device);
            let masks = (settings.dropout > 0.0).then(|| {
                DropoutMasks::draw(
                    chunk.len(),
                    settings.hidden,
                    settings.dropout,
                    &mut dropout_rng,
                    device,
                )
            });
            let logits = model.forward_with(batch.visits, masks); // [chunk, drugs]
            let loss = loss_fn.forward(logits, batch.targets); // [1]
            total += loss.clone().into_scalar().elem::<f64>() * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(settings.lr, model, grads);
        }
        let inner = model.valid();
        let val_scores = scores(&inner, &features, cohort, val, device);
        let val_report = report(cohort, val, &val_scores, 0.5);
        let j = val_report.get("jaccard").unwrap_or(0.0);
        if best_epoch.as_ref().is_none_or(|(_, b, _)| j > *b) {
            best_epoch = Some((epoch, j, inner));
        }
        let entry = EpochLog {
            epoch,
            loss: total / order.len() as f64,
            val: val_report,
        };
        on_epoch(&entry).map_err(PolicyError::Invalid)?;
        log.push(entry);
    }
    // Early stopping: the epoch with the best validation Jaccard.
    let (kept_epoch, _, model) = best_epoch.expect("at least one epoch ran");
    let val_scores = scores(&model, &features, cohort, val, device);
    let threshold = threshold::pick(cohort, val, &val_scores, settings.threshold_step);
    Ok(TrainedClassifier {
        model,
        features,
        threshold,
        best_epoch: kept_epoch,
        log,
        device: device.clone(),
    })
}

impl<B: Backend> TrainedClassifier<B> {
    /// Predictions with scores for the given visits; the list holds the
    /// drugs scoring at least the threshold.
    pub fn predict(&self, cohort: &Cohort, visits: &[usize]) -> Predictions {
        let s = scores(&self.model, &self.features, cohort, visits, &self.device);
        Predictions {
            by_visit: visits
                .iter()
                .zip(s)
                .map(|(&v, row)| {
                    let drugs = above(&row, self.threshold);
                    (
                        v,
                        Prediction {
                            drugs,
                            scores: Some(row.into_iter().map(f64::from).collect()),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Cross-fitted predictions of the training visits (see
/// [`ClassifierSettings::cross_fit`]): patients are dealt into folds by a
/// seeded shuffle, and each fold is predicted by a classifier trained on the
/// others (early stopping and threshold on `val`, as the full classifier).
pub fn cross_fit<B: AutodiffBackend>(
    cohort: &Cohort,
    features: &VisitFeatures,
    train: &[usize],
    val: &[usize],
    settings: &ClassifierSettings,
    seed: u64,
    device: &B::Device,
) -> Result<Predictions, PolicyError> {
    let k = settings.cross_fit;
    let mut patients: Vec<&str> = train
        .iter()
        .map(|&v| cohort.visits[v].patient_id.as_str())
        .collect();
    patients.sort_unstable();
    patients.dedup();
    if k > patients.len() {
        return Err(PolicyError::Config {
            field: "cross_fit",
            message: format!(
                "{k} folds for {} training patients: each fold needs a patient",
                patients.len()
            ),
        });
    }
    patients.shuffle(&mut seeded_rng(seed, "classifier-cross-fit"));
    let fold_of: std::collections::HashMap<&str, usize> =
        patients.iter().enumerate().map(|(i, p)| (*p, i % k)).collect();
    let fold = |v: usize| fold_of[cohort.visits[v].patient_id.as_str()];
    let mut out = Predictions::default();
    for f in 0..k {
        let rest: Vec<usize> = train.iter().copied().filter(|&v| fold(v) != f).collect();
        let held: Vec<usize> = train.iter().copied().filter(|&v| fold(v) == f).collect();
        if rest.is_empty() || held.is_empty() {
            continue;
        }
        let model = train_classifier::<B>(
            cohort,
            features,
            &rest,
            val,
            settings,
            seed.wrapping_add(1 + f as u64),
            device,
        )?;
        out.by_visit.extend(model.predict(cohort, &held).by_visit);
    }
    Ok(out)
}
