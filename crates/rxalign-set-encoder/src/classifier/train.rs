//! Training the classifier: binary cross-entropy over drugs with Adam, the
//! threshold chosen on the validation split.

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rxalign_core::metrics::MetricReport;
use rxalign_core::{Cohort, Prediction, Predictions, Rng, seeded_rng};
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

/// A trained classifier with its threshold.
#[derive(Debug)]
pub struct TrainedClassifier<B: Backend> {
    pub model: DrugClassifier<B>,
    pub features: VisitFeatures,
    /// The threshold that maximised validation Jaccard.
    pub threshold: f32,
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

/// The classifier's optimizer (Adam).
pub type ClassifierOptim<B> = OptimizerAdaptor<Adam, DrugClassifier<B>, B>;

/// The classifier's generators: the batch order's stream, then the dropout
/// masks'.
pub type ClassifierRngs = [Rng; 2];

/// The pieces of training a classifier on `train` (binary cross-entropy
/// over drugs with Adam, dropout from its own stream), which the training
/// loop (`rxalign_train::learner`, driven by the classifier stage) calls:
/// [`Self::start`], then [`Self::epoch`] and [`Self::validate`] each epoch,
/// then [`Self::finish`] on the model it keeps (the loop's rule: the epoch
/// with the best validation Jaccard at 0.5, the earliest of equals). The
/// same seed gives the same model, resumed or not.
#[derive(Debug)]
pub struct ClassifierTraining<'a> {
    cohort: &'a Cohort,
    features: &'a VisitFeatures,
    train: &'a [usize],
    val: &'a [usize],
    settings: &'a ClassifierSettings,
    seed: u64,
    /// The training visits in the order of the last epoch, and how many
    /// epochs have shuffled it (each epoch shuffles the last one's order).
    order: Vec<usize>,
    shuffled: usize,
}

impl<'a> ClassifierTraining<'a> {
    /// Checks the settings and the memory the network needs on this data,
    /// before anything is allocated.
    pub fn new(
        cohort: &'a Cohort,
        features: &'a VisitFeatures,
        train: &'a [usize],
        val: &'a [usize],
        settings: &'a ClassifierSettings,
        seed: u64,
    ) -> Result<Self, PolicyError> {
        settings.validate()?;
        if train.is_empty() {
            return Err(PolicyError::Invalid("the training split is empty".into()));
        }
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
        Ok(Self {
            cohort,
            features,
            train,
            val,
            settings,
            seed,
            order: train.to_vec(),
            shuffled: 0,
        })
    }

    /// The fresh network (drawn from the seed's `classifier-init` stream),
    /// its optimizer and the loop's generators.
    pub fn start<B: AutodiffBackend>(
        &self,
        device: &B::Device,
    ) -> (DrugClassifier<B>, ClassifierOptim<B>, ClassifierRngs) {
        let mut init_rng = seeded_rng(self.seed, "classifier-init");
        let model = DrugClassifierConfig::for_features(self.features, self.settings.hidden)
            .init(&mut init_rng, device);
        let weight_decay = self.settings.weight_decay;
        let optim = AdamConfig::new()
            .with_weight_decay((weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)))
            .init();
        let rngs = [
            seeded_rng(self.seed, "classifier-batches"),
            seeded_rng(self.seed, "classifier-dropout"),
        ];
        (model, optim, rngs)
    }

    /// Epoch `epoch` (from 1): the training visits shuffled (the order of
    /// the epoch before, rebuilt from the seed where the loop resumed), one
    /// Adam step per batch. Returns the model and the mean training loss.
    pub fn epoch<B: AutodiffBackend>(
        &mut self,
        mut model: DrugClassifier<B>,
        optim: &mut ClassifierOptim<B>,
        rngs: &mut ClassifierRngs,
        epoch: usize,
        device: &B::Device,
    ) -> (DrugClassifier<B>, f64) {
        if self.shuffled + 1 != epoch {
            // Resumed: the order after `epoch - 1` shuffles of the batch
            // stream, whose position the loop restored.
            let mut replay = seeded_rng(self.seed, "classifier-batches");
            self.order = self.train.to_vec();
            for _ in 1..epoch {
                self.order.shuffle(&mut replay);
            }
        }
        let [batches, dropout] = rngs;
        self.order.shuffle(batches);
        self.shuffled = epoch;
        let settings = self.settings;
        let loss_fn = BinaryCrossEntropyLossConfig::new().with_logits(true).init(device);
        let mut total = 0.0;
        for chunk in self.order.chunks(settings.batch_size) {
            let batch = Batch::<B>::new(self.features, self.cohort, chunk, device);
            let masks = (settings.dropout > 0.0)
                .then(|| DropoutMasks::draw(chunk.len(), settings.hidden, settings.dropout, dropout, device));
            let logits = model.forward_with(batch.visits, masks); // [chunk, drugs]
            let loss = loss_fn.forward(logits, batch.targets); // [1]
            total += loss.clone().into_scalar().elem::<f64>() * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(settings.lr, model, grads);
        }
        (model, total / self.order.len() as f64)
    }

    /// The validation metrics of `model`'s lists at the threshold 0.5
    /// (what the loop's selection compares: their Jaccard).
    pub fn validate<B: Backend>(&self, model: &DrugClassifier<B>, device: &B::Device) -> MetricReport {
        let val_scores = scores(model, self.features, self.cohort, self.val, device);
        report(self.cohort, self.val, &val_scores, 0.5)
    }

    /// The classifier of the kept `model`, its threshold picked on the
    /// validation visits.
    pub fn finish<B: Backend>(&self, model: DrugClassifier<B>, device: &B::Device) -> TrainedClassifier<B> {
        let val_scores = scores(&model, self.features, self.cohort, self.val, device);
        let threshold = threshold::pick(self.cohort, self.val, &val_scores, self.settings.threshold_step);
        TrainedClassifier {
            model,
            features: self.features.clone(),
            threshold,
            device: device.clone(),
        }
    }
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

/// The folds of cross-fitted predictions of the training visits (see
/// [`ClassifierSettings::cross_fit`]): patients are dealt into
/// `settings.cross_fit` folds by a seeded shuffle; each fold is its
/// training visits apart from the fold's (what its classifier trains on)
/// and the fold's own (what it predicts). Folds with nothing on either side
/// are left out. Each fold's classifier is seeded `seed + 1 + fold`.
pub fn cross_fit_folds(
    cohort: &Cohort,
    train: &[usize],
    settings: &ClassifierSettings,
    seed: u64,
) -> Result<Vec<Fold>, PolicyError> {
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
    Ok((0..k)
        .map(|f| Fold {
            index: f,
            seed: seed.wrapping_add(1 + f as u64),
            rest: train.iter().copied().filter(|&v| fold(v) != f).collect(),
            held: train.iter().copied().filter(|&v| fold(v) == f).collect(),
        })
        .filter(|f| !f.rest.is_empty() && !f.held.is_empty())
        .collect())
}

/// One fold of [`cross_fit_folds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// From 0.
    pub index: usize,
    /// The seed of the fold's classifier.
    pub seed: u64,
    /// The training visits it trains on.
    pub rest: Vec<usize>,
    /// The training visits it predicts.
    pub held: Vec<usize>,
}
