use rxalign_core::run::MetricsRecord;
use rxalign_policy::classifier::{ClassifierSettings, cross_fit, train_classifier};
use rxalign_policy::with_backend;

use super::{RunContext, Stage};
use crate::ExperimentError;

/// Trains the drug-level classifier (FLAME's first stage, LAMO's point-wise
/// recommender) on the training visits and scores it. Each epoch's
/// validation metrics (at threshold 0.5) and mean training loss go to
/// `metrics.jsonl` as steps `1..epochs-1`; the final evaluation, at the
/// threshold chosen on validation, is step `epochs`. With `cross_fit`, the
/// training visits' lists (what `start_from` hands to later stages) are
/// cross-fitted; the validation and test lists are the classifier's own.
#[derive(Debug)]
pub struct ClassifierStage {
    settings: ClassifierSettings,
}

impl ClassifierStage {
    pub fn new(settings: ClassifierSettings) -> Self {
        Self { settings }
    }
}

impl Stage for ClassifierStage {
    fn contract(&self) -> super::Contract {
        super::Contract {
            records: Some(vec!["classifier".into()]),
            ..super::Contract::default()
        }
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let data = ctx.data;
        let cohort = &data.cohort;
        let all: Vec<usize> = (0..cohort.visits.len()).collect();
        let (log, predictions) = with_backend!(ctx.device, |device: B| {
            let trained = train_classifier::<B>(
                cohort,
                &ctx.features,
                &ctx.split.train,
                &ctx.split.val,
                &self.settings,
                ctx.seed,
                &device,
            )
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
            let mut predictions = trained.predict(cohort, &all);
            if self.settings.cross_fit >= 2 {
                let fitted = cross_fit::<B>(
                    cohort,
                    &ctx.features,
                    &ctx.split.train,
                    &ctx.split.val,
                    &self.settings,
                    ctx.seed,
                    &device,
                )
                .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
                predictions.by_visit.extend(fitted.by_visit);
            }
            (trained.log.clone(), predictions)
        });
        let records: Vec<MetricsRecord> = log
            .iter()
            .take(log.len().saturating_sub(1))
            .map(|log| {
                let mut metrics: std::collections::BTreeMap<String, Option<f64>> =
                    log.val.values.iter().map(|v| (v.name.clone(), v.value)).collect();
                metrics.insert("loss/train".into(), Some(log.loss));
                metrics.insert("threshold".into(), Some(0.5));
                MetricsRecord {
                    step: log.epoch as u64,
                    split: "val".into(),
                    method: "classifier".into(),
                    metrics,
                }
            })
            .collect();
        ctx.append_metrics(&records)?;
        ctx.record_method("classifier", self.settings.epochs as u64, &predictions)?;
        Ok(())
    }
}
