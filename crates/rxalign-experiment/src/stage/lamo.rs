use std::collections::BTreeMap;

use rxalign_core::run::MetricsRecord;
use rxalign_llama::lamo::{LamoEpochLog, LamoSettings, train_lamo_with};
use rxalign_policy::with_backend;

use super::{RunContext, Stage};
use crate::ExperimentError;

/// Questions scored per forward call when predicting.
const EVAL_BATCH: usize = 64;

/// LAMO's grouped yes/no classifier (`rxalign_llama::lamo`): one LoRA
/// adapter per drug group trained on the training visits' questions, then
/// every visit scored (`p(yes)` per drug) and listed at the threshold chosen
/// on validation, recorded as method `lamo`. As each epoch but the last
/// ends, its validation metrics (threshold 0.5), the mean training
/// cross-entropy (`loss/train`) and, per group, the training and
/// validation cross-entropy (`group/<name>/loss/train`,
/// `group/<name>/loss/val`) go to `metrics.jsonl` (steps `1..epochs-1`);
/// the final evaluation, at the chosen threshold, is step `epochs`, with
/// the last epoch's group losses and the epoch whose adapter each group
/// kept (`group/<name>/kept_epoch`; `select`) beside it.
#[derive(Debug)]
pub struct LamoStage {
    settings: LamoSettings,
}

impl LamoStage {
    pub fn new(settings: LamoSettings) -> Self {
        Self { settings }
    }
}

/// The per-group cross-entropies of an epoch, by metric name.
fn group_metrics(log: &LamoEpochLog) -> BTreeMap<String, Option<f64>> {
    let mut m = BTreeMap::new();
    for (name, l) in &log.group_loss {
        m.insert(format!("group/{name}/loss/train"), Some(*l));
    }
    for (name, l) in &log.group_val_loss {
        m.insert(format!("group/{name}/loss/val"), *l);
    }
    m
}

fn epoch_record(log: &LamoEpochLog) -> MetricsRecord {
    let mut metrics: BTreeMap<String, Option<f64>> =
        log.val.values.iter().map(|v| (v.name.clone(), v.value)).collect();
    metrics.insert("loss/train".into(), Some(log.loss));
    metrics.insert("threshold".into(), Some(0.5));
    metrics.extend(group_metrics(log));
    MetricsRecord::new(log.epoch as u64, "val", "lamo", metrics)
}

impl Stage for LamoStage {
    fn contract(&self) -> super::Contract {
        super::Contract {
            records: Some(vec!["lamo".into()]),
            ..super::Contract::default()
        }
    }

    fn kind(&self) -> &str {
        "lamo"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let data = ctx.data;
        let cohort = &data.cohort;
        let all: Vec<usize> = (0..cohort.visits.len()).collect();
        let (train, val) = (ctx.split.train.clone(), ctx.split.val.clone());
        let epochs = self.settings.epochs as u64;
        let (device, seed) = (ctx.device, ctx.seed);
        let invalid = |e: rxalign_policy::PolicyError| ExperimentError::Invalid(format!("lamo: {e}"));
        let template = self.settings.template().map_err(invalid)?;
        let (predictions, last) = with_backend!(device, |device: B| {
            let mut on_epoch = |log: &LamoEpochLog| -> Result<(), String> {
                if (log.epoch as u64) < epochs {
                    ctx.append_metrics(&[epoch_record(log)])
                        .map_err(|e| e.to_string())?;
                }
                ctx.progress(log.epoch as u64, epochs).map_err(|e| e.to_string())
            };
            let trained = train_lamo_with::<B>(
                cohort,
                &train,
                &val,
                &self.settings,
                &template,
                seed,
                &device,
                EVAL_BATCH,
                &mut on_epoch,
            )
            .map_err(invalid)?;
            let predictions = trained.predict(cohort, &all, EVAL_BATCH).map_err(invalid)?;
            let mut groups = trained.log.last().map(group_metrics).unwrap_or_default();
            for (name, epoch) in &trained.kept_epochs {
                groups.insert(format!("group/{name}/kept_epoch"), Some(*epoch as f64));
            }
            (predictions, groups)
        });
        ctx.record_method("lamo", epochs, &predictions)?;
        // Names apart from the evaluation's, so no metric is written twice.
        ctx.append_metrics(&[MetricsRecord::new(epochs, "val", "lamo", last)])?;
        Ok(())
    }
}
