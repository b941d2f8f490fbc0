use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::run::MetricsRecord;
use rxalign_core::{Rng, SplitName};
use rxalign_llama::lamo::{GroupBest, LamoOptim, LamoSettings, LamoTraining};
use rxalign_lm::Llama;
use rxalign_policy::checkpoint::{self, Generators, Keep};
use rxalign_policy::{PolicyError, with_backend};
use rxalign_train::TrainError;
use rxalign_train::learner::{Chooser, Learner, Plan, drive};
use rxalign_train::observer::{Evaluation, StepLog, TrainObserver};
use rxalign_train::select::{Select, best_path};

use super::epochs::{EpochObserver, epoch_metrics, val_evaluation};
use super::{RunContext, Stage};
use crate::ExperimentError;

/// Questions scored per forward call when predicting.
const EVAL_BATCH: usize = 64;

/// LAMO's grouped yes/no classifier (`rxalign_llama::lamo`): one LoRA
/// adapter per drug group trained on the training visits' questions, then
/// every visit scored (`p(yes)` per drug) and listed at the threshold chosen
/// on validation, recorded as method `lamo`. It trains in the loop every
/// learner shares (`rxalign_train::learner`): a checkpoint of the adapters
/// after every epoch (`checkpoints/<index>-lamo.ckpt`; with `select:
/// "validation"` the kept adapters beside it), from which an interrupted
/// run resumes exactly. As each epoch but the last ends, its validation
/// metrics (threshold 0.5), the mean training cross-entropy (`loss/train`)
/// and, per group, the training and validation cross-entropy
/// (`group/<name>/loss/train`, `group/<name>/loss/val`) go to
/// `metrics.jsonl` (steps `1..epochs-1`); the final evaluation, at the
/// chosen threshold, is step `epochs`, with the last epoch's group losses
/// and the epoch whose adapter each group kept (`group/<name>/kept_epoch`;
/// `select`) beside it.
#[derive(Debug)]
pub struct LamoStage {
    settings: LamoSettings,
}

impl LamoStage {
    pub fn new(settings: LamoSettings) -> Self {
        Self { settings }
    }
}

/// A group's metric `what` (`loss/train`, `loss/val`, `kept_epoch`).
fn group_metric(group: &str, what: &str) -> String {
    format!("group/{group}/{what}")
}

/// LAMO's epochs as a learner of the shared loop.
struct LamoLearner<'t, 'a, B: AutodiffBackend> {
    training: &'t LamoTraining<'a>,
    device: B::Device,
}

impl<B: AutodiffBackend> Learner<B> for LamoLearner<'_, '_, B> {
    type Model = Llama<B>;
    type Optim = LamoOptim<B>;
    type Rng = Rng;

    fn step(
        &mut self,
        model: Self::Model,
        optim: &mut Self::Optim,
        rng: &mut Rng,
        step: usize,
        _: &mut dyn TrainObserver,
    ) -> Result<(Self::Model, StepLog), TrainError> {
        let (model, epoch) = self.training.epoch(model, optim, rng, step, &self.device)?;
        let mut entry = StepLog {
            step,
            ..StepLog::default()
        };
        entry.train.insert("loss/train".into(), epoch.loss);
        for (name, loss) in epoch.group_loss {
            entry.train.insert(group_metric(&name, "loss/train"), loss);
        }
        Ok((model, entry))
    }

    /// The validation metrics at threshold 0.5 and each group's validation
    /// cross-entropy (what `select: "validation"` compares).
    fn evaluate(
        &mut self,
        model: &Self::Model,
        _: usize,
        _: &mut dyn TrainObserver,
    ) -> Result<Vec<Evaluation>, TrainError> {
        let validation = self.training.validate(&model.valid())?;
        let losses = validation
            .group_loss
            .into_iter()
            .map(|(name, loss)| (group_metric(&name, "loss/val"), loss));
        Ok(vec![val_evaluation(&validation.report, losses, None)])
    }
}

/// LAMO's selection as the loop's chooser: each group keeps its last
/// epoch's adapter, or with `select: "validation"` its best one's
/// ([`GroupBest`], read from each epoch's `group/<name>/loss/val`); the
/// kept adapters live in one model, saved beside the loop's checkpoint
/// whenever one changes. Each group's kept epoch goes to `epochs`.
struct GroupKeeper<'t, 'a, 'o, B: AutodiffBackend> {
    training: &'t LamoTraining<'a>,
    select: Select,
    best: GroupBest,
    kept: Option<Llama<B>>,
    path: PathBuf,
    epochs: &'o mut Vec<usize>,
}

impl<B: AutodiffBackend> GroupKeeper<'_, '_, '_, B> {
    /// The groups' validation losses of a step, in group order.
    fn losses(&self, entry: &StepLog) -> Vec<Option<f64>> {
        let val = entry.evals.iter().find(|e| e.split == SplitName::Val);
        self.training
            .groups
            .groups
            .iter()
            .map(|(name, _)| {
                val.and_then(|e| e.metrics.get(&group_metric(name, "loss/val")).copied().flatten())
            })
            .collect()
    }
}

impl<B: AutodiffBackend> Chooser<B, Llama<B>> for GroupKeeper<'_, '_, '_, B> {
    fn restore(&mut self, log: &[StepLog], model: &Llama<B>, device: &B::Device) -> Result<(), TrainError> {
        if self.select != Select::Validation || log.is_empty() {
            return Ok(());
        }
        for entry in log {
            let losses = self.losses(entry);
            self.best.observe(entry.step, &losses);
        }
        self.kept = Some(checkpoint::load_module(&self.path, model.clone(), device)?);
        Ok(())
    }

    fn stopped(&self) -> bool {
        false
    }

    fn step<O: Optimizer<Llama<B>, B>, R: Generators>(
        &mut self,
        entry: &StepLog,
        model: &Llama<B>,
        optim: &O,
        rng: &R,
    ) -> Result<bool, TrainError> {
        if self.select != Select::Validation {
            return Ok(false);
        }
        let losses = self.losses(entry);
        let which = self.best.observe(entry.step, &losses);
        let kept = match &mut self.kept {
            Some(kept) => {
                self.training.keep_adapters(kept, model, &which)?;
                kept
            }
            None => self.kept.insert(model.clone()),
        };
        if which.contains(&true) {
            let none: &[StepLog] = &[];
            checkpoint::save_loop(
                Some(&self.path),
                Keep::Trainable,
                kept,
                optim,
                entry.step,
                rng,
                none,
            )?;
        }
        Ok(false)
    }

    fn finish<O: Optimizer<Llama<B>, B>, R: Generators>(
        self,
        current: Llama<B>,
        _: &O,
        _: &R,
        _: &[StepLog],
        planned: usize,
        _: &mut dyn TrainObserver,
        _: &B::Device,
    ) -> Result<Llama<B>, TrainError> {
        match (self.select, self.kept) {
            (Select::Validation, Some(kept)) => {
                *self.epochs = self.best.epochs();
                Ok(kept)
            }
            _ => {
                *self.epochs = vec![planned; self.training.groups.len()];
                Ok(current)
            }
        }
    }
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
        let epochs = self.settings.epochs;
        let (device, seed) = (ctx.devices.first(), ctx.seed);
        let invalid = |e: PolicyError| ExperimentError::Invalid(format!("lamo: {e}"));
        let template = self.settings.template().map_err(invalid)?;
        let checkpoint = ctx.checkpoint.clone();
        let (predictions, last) = with_backend!(device, |device: B| {
            let (training, model) = LamoTraining::new::<B>(
                cohort,
                &train,
                &val,
                &self.settings,
                &template,
                seed,
                EVAL_BATCH,
                &device,
            )
            .map_err(invalid)?;
            let mut observer = EpochObserver::new(ctx, "lamo");
            let mut kept_epochs = Vec::new();
            let model = train_epochs::<B>(
                &training,
                model,
                &self.settings,
                &checkpoint,
                &mut kept_epochs,
                &mut observer,
                &device,
            )
            .map_err(|e| match e {
                TrainError::Policy(e) => invalid(e),
                other => other.into(),
            })?;
            // The last epoch's group losses, and what each group kept.
            let mut groups: BTreeMap<String, Option<f64>> = observer
                .last
                .as_ref()
                .map(epoch_metrics)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k.starts_with("group/"))
                .collect();
            let trained = training.finish(model.valid(), &kept_epochs).map_err(invalid)?;
            for (name, epoch) in &trained.kept_epochs {
                groups.insert(group_metric(name, "kept_epoch"), Some(*epoch as f64));
            }
            let predictions = trained.predict(cohort, &all, EVAL_BATCH).map_err(invalid)?;
            (predictions, groups)
        });
        ctx.record_method("lamo", epochs as u64, &predictions)?;
        // Names apart from the evaluation's, so no metric is written twice.
        ctx.append_metrics(&[MetricsRecord::new(epochs as u64, "val", "lamo", last)])?;
        Ok(())
    }
}

/// Trains `training`'s adapters from `model` in the shared loop,
/// checkpointed at `checkpoint` (resumed from it where it is written);
/// returns the kept model, each group's kept epoch in `kept_epochs`.
fn train_epochs<B: AutodiffBackend>(
    training: &LamoTraining<'_>,
    model: Llama<B>,
    settings: &LamoSettings,
    checkpoint: &Path,
    kept_epochs: &mut Vec<usize>,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<Llama<B>, TrainError> {
    let (optim, rng) = training.start::<B>();
    let keeper = GroupKeeper {
        training,
        select: settings.select,
        best: GroupBest::default(),
        kept: None,
        path: best_path(checkpoint),
        epochs: kept_epochs,
    };
    let plan = Plan {
        checkpoint: Some(checkpoint),
        keep: Keep::Trainable,
        last: settings.epochs,
        evaluate_start: false,
    };
    let mut learner = LamoLearner {
        training,
        device: device.clone(),
    };
    drive(&mut learner, keeper, plan, model, optim, rng, observer, device)
}
