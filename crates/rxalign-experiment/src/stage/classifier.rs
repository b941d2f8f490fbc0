use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::Cohort;
use rxalign_policy::checkpoint::Keep;
use rxalign_policy::features::VisitFeatures;
use rxalign_policy::{PolicyError, with_backend};
use rxalign_set_encoder::classifier::{
    ClassifierOptim, ClassifierRngs, ClassifierSettings, ClassifierTraining, DrugClassifier,
    TrainedClassifier, cross_fit_folds,
};
use rxalign_train::TrainError;
use rxalign_train::learner::{Learner, Plan, drive};
use rxalign_train::observer::{Evaluation, Silent, StepLog, TrainObserver};
use rxalign_train::select::{Keeper, Select, beside};

use super::epochs::{EpochObserver, val_evaluation};
use super::{RunContext, Stage};
use crate::ExperimentError;

/// Trains the drug-level classifier (FLAME's first stage, LAMO's point-wise
/// recommender) on the training visits and scores it. It trains in the
/// loop every learner shares (`rxalign_train::learner`): a checkpoint
/// after every epoch (`checkpoints/<index>-classifier.ckpt`, the best
/// epoch's model beside it), from which an interrupted run resumes exactly;
/// the epoch kept is the one with the best validation Jaccard at threshold
/// 0.5 (the earliest of equals). As each epoch but the last ends, its
/// validation metrics (at threshold 0.5) and mean training loss go to
/// `metrics.jsonl` (steps `1..epochs-1`); the final evaluation, of the kept
/// epoch at the threshold chosen on validation, is step `epochs`. With
/// `cross_fit`, the training visits' lists (what `start_from` hands to
/// later stages) are cross-fitted, each fold's classifier trained and
/// checkpointed the same way (`<index>-classifier.fold-<k>.ckpt`); the
/// validation and test lists are the classifier's own.
#[derive(Debug)]
pub struct ClassifierStage {
    settings: ClassifierSettings,
}

impl ClassifierStage {
    pub fn new(settings: ClassifierSettings) -> Self {
        Self { settings }
    }
}

/// The classifier's epochs as a learner of the shared loop.
struct ClassifierLearner<'a, B: AutodiffBackend> {
    training: ClassifierTraining<'a>,
    device: B::Device,
}

impl<B: AutodiffBackend> Learner<B> for ClassifierLearner<'_, B> {
    type Model = DrugClassifier<B>;
    type Optim = ClassifierOptim<B>;
    type Rng = ClassifierRngs;

    fn step(
        &mut self,
        model: Self::Model,
        optim: &mut Self::Optim,
        rng: &mut Self::Rng,
        step: usize,
        _: &mut dyn TrainObserver,
    ) -> Result<(Self::Model, StepLog), TrainError> {
        let (model, loss) = self.training.epoch(model, optim, rng, step, &self.device);
        let mut entry = StepLog {
            step,
            ..StepLog::default()
        };
        entry.train.insert("loss/train".into(), loss);
        Ok((model, entry))
    }

    /// The validation metrics at threshold 0.5; the selection compares
    /// their Jaccard (0 where there is none).
    fn evaluate(
        &mut self,
        model: &Self::Model,
        _: usize,
        _: &mut dyn TrainObserver,
    ) -> Result<Vec<Evaluation>, TrainError> {
        let report = self.training.validate(&model.valid(), &self.device);
        let jaccard = report.get("jaccard").unwrap_or(0.0);
        Ok(vec![val_evaluation(&report, [], Some(jaccard))])
    }
}

/// The inputs of one classifier's training.
struct Fit<'a> {
    cohort: &'a Cohort,
    features: &'a VisitFeatures,
    train: &'a [usize],
    val: &'a [usize],
    settings: &'a ClassifierSettings,
}

impl Fit<'_> {
    /// Trains a classifier from `seed` in the shared loop, checkpointed at
    /// `checkpoint` (resumed from it where it is written).
    fn train<B: AutodiffBackend>(
        &self,
        seed: u64,
        checkpoint: &Path,
        observer: &mut dyn TrainObserver,
        device: &B::Device,
    ) -> Result<TrainedClassifier<B::InnerBackend>, ExperimentError> {
        let invalid = |e: PolicyError| ExperimentError::Invalid(e.to_string());
        let training = ClassifierTraining::new(
            self.cohort,
            self.features,
            self.train,
            self.val,
            self.settings,
            seed,
        )
        .map_err(invalid)?;
        let (model, optim, rngs) = training.start::<B>(device);
        let mut learner = ClassifierLearner {
            training,
            device: device.clone(),
        };
        let plan = Plan {
            checkpoint: Some(checkpoint),
            keep: Keep::All,
            last: self.settings.epochs,
            evaluate_start: false,
        };
        let keeper = Keeper::new(Select::Validation, 0, Some(checkpoint), Keep::All);
        let model =
            drive(&mut learner, keeper, plan, model, optim, rngs, observer, device).map_err(|e| match e {
                TrainError::Policy(e) => invalid(e),
                other => other.into(),
            })?;
        Ok(learner.training.finish(model.valid(), device))
    }
}

impl Stage for ClassifierStage {
    fn contract(&self) -> super::Contract {
        super::Contract {
            records: Some(vec!["classifier".into()]),
            ..super::Contract::default()
        }
    }

    fn kind(&self) -> &str {
        "classifier"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let data = ctx.data;
        let cohort = &data.cohort;
        let all: Vec<usize> = (0..cohort.visits.len()).collect();
        let features = ctx.features.clone();
        let (train, val) = (ctx.split.train.clone(), ctx.split.val.clone());
        let (device, seed) = (ctx.devices.first(), ctx.seed);
        let checkpoint = ctx.checkpoint.clone();
        let fit = Fit {
            cohort,
            features: &features,
            train: &train,
            val: &val,
            settings: &self.settings,
        };
        let predictions = with_backend!(device, |device: B| {
            let mut observer = EpochObserver::new(ctx, "classifier");
            let trained = fit.train::<B>(seed, &checkpoint, &mut observer, &device)?;
            let mut predictions = trained.predict(cohort, &all);
            if self.settings.cross_fit >= 2 {
                let folds = cross_fit_folds(cohort, &train, &self.settings, seed)
                    .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
                for fold in folds {
                    let fitted = Fit {
                        train: &fold.rest,
                        ..fit
                    }
                    .train::<B>(
                        fold.seed,
                        &beside(&checkpoint, &format!("fold-{}", fold.index + 1)),
                        &mut Silent,
                        &device,
                    )?;
                    predictions
                        .by_visit
                        .extend(fitted.predict(cohort, &fold.held).by_visit);
                }
            }
            predictions
        });
        ctx.record_method("classifier", self.settings.epochs as u64, &predictions)?;
        Ok(())
    }
}
