use rxalign_core::run::MetricsRecord;
use rxalign_policy::with_backend;
use rxalign_set_encoder::classifier::{ClassifierSettings, EpochLog, cross_fit, train_classifier_with};

use super::{RunContext, Stage};
use crate::ExperimentError;

/// Trains the drug-level classifier (FLAME's first stage, LAMO's point-wise
/// recommender) on the training visits and scores it. As each epoch but the
/// last ends, its validation metrics (at threshold 0.5) and mean training
/// loss go to `metrics.jsonl` (steps `1..epochs-1`); the final evaluation,
/// of the epoch kept by early stopping at the threshold chosen on
/// validation, is step `epochs`. With `cross_fit`, the training visits'
/// lists (what `start_from` hands to later stages) are cross-fitted; the
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

/// An epoch's record: validation metrics at threshold 0.5 and the mean
/// training loss.
fn epoch_record(log: &EpochLog) -> MetricsRecord {
    let mut metrics: std::collections::BTreeMap<String, Option<f64>> =
        log.val.values.iter().map(|v| (v.name.clone(), v.value)).collect();
    metrics.insert("loss/train".into(), Some(log.loss));
    metrics.insert("threshold".into(), Some(0.5));
    MetricsRecord::new(log.epoch as u64, "val", "classifier", metrics)
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
        let epochs = self.settings.epochs as u64;
        let (device, seed) = (ctx.device, ctx.seed);
        let predictions = with_backend!(device, |device: B| {
            // Each epoch's record goes out as the epoch ends; the last one
            // is followed by the final evaluation at the same step.
            let mut on_epoch = |log: &EpochLog| -> Result<(), String> {
                if (log.epoch as u64) < epochs {
                    ctx.append_metrics(&[epoch_record(log)])
                        .map_err(|e| e.to_string())?;
                }
                ctx.progress(log.epoch as u64, epochs).map_err(|e| e.to_string())
            };
            let trained = train_classifier_with::<B>(
                cohort,
                &features,
                &train,
                &val,
                &self.settings,
                seed,
                &device,
                &mut on_epoch,
            )
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
            let mut predictions = trained.predict(cohort, &all);
            if self.settings.cross_fit >= 2 {
                let fitted = cross_fit::<B>(cohort, &features, &train, &val, &self.settings, seed, &device)
                    .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
                predictions.by_visit.extend(fitted.by_visit);
            }
            predictions
        });
        ctx.record_method("classifier", epochs, &predictions)?;
        Ok(())
    }
}
