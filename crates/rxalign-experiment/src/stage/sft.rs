use rxalign_train::sft::SftSettings;

use super::policy::train_and_record;
use super::{ArtifactId, PolicyCheckpoint, RunContext, Stage};
use crate::ExperimentError;

/// Supervised fine-tuning of the run's policy family on expert decisions
/// (from corrupted ground truths, or the run's start lists, to the ground
/// truth), then greedy decoding from the run's start lists. Each epoch's
/// mean cross-entropy goes to `metrics.jsonl` as it finishes (`loss/sft`,
/// train split), with the greedy lists' metrics on the validation split
/// every `eval_every` epochs; the kept trajectories are the policy's own
/// decoded steps, each with its probability.
#[derive(Debug)]
pub struct SftStage {
    settings: SftSettings,
}

impl SftStage {
    pub fn new(settings: SftSettings) -> Result<Self, String> {
        settings.validate().map_err(|e| e.to_string())?;
        Ok(Self { settings })
    }
}

impl Stage for SftStage {
    fn kind(&self) -> &str {
        "sft"
    }

    fn method(&self) -> &str {
        self.settings.name.as_deref().unwrap_or("sft")
    }

    fn contract(&self) -> super::Contract {
        super::Contract {
            records: Some(vec![self.method().to_string()]),
            gives: vec![ArtifactId::of::<PolicyCheckpoint>(self.method())],
            ..super::Contract::default()
        }
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let s = &self.settings;
        let checkpoint = ctx.checkpoint.clone();
        train_and_record(
            ctx,
            self.method(),
            s,
            s.eval_every,
            s.patients,
            s.epochs,
            |policy, devices, job, observer| policy.sft(devices, job, observer),
        )?;
        ctx.artifacts.give(self.method(), PolicyCheckpoint(checkpoint));
        Ok(())
    }
}
