use rxalign_train::sft::{SftJob, SftSettings};

use rxalign_train::data::training_visits;

use super::policy::{StageObserver, eval_plan, evaluate_policy};
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
        let (data, split, reward) = (ctx.data, ctx.split, ctx.reward);
        let cohort = &data.cohort;
        let policy = ctx.policy.clone();
        let eval = eval_plan(ctx, self.settings.eval_every)?;
        let start = ctx.start.clone();
        let run_starts =
            |v: usize, rng: &mut rxalign_core::Rng| start.start(cohort, v, rng).map_err(|e| e.to_string());
        let checkpoint = ctx.checkpoint.clone();
        let train = training_visits(self.settings.patients, cohort, &split.train, ctx.seed);
        let job = SftJob {
            cohort,
            reward,
            train: &train,
            settings: &self.settings,
            starts: &run_starts,
            budget: policy.budget(),
            seed: ctx.seed,
            checkpoint: Some(&checkpoint),
            eval: &eval,
        };
        let devices = ctx.devices.clone();
        let mut observer = StageObserver::new(ctx, self.method());
        policy.sft(&devices, &job, &mut observer)?;
        let step = observer.chosen_step(self.settings.epochs);
        ctx.artifacts
            .give(self.method(), PolicyCheckpoint(checkpoint.clone()));
        evaluate_policy(ctx, self.method(), step, &checkpoint)
    }
}
