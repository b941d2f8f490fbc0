use rxalign_train::grpo::GrpoSettings;

use super::policy::train_and_record;
use super::{Need, PolicyCheckpoint, RunContext, Stage};
use crate::ExperimentError;

/// GRPO (`grpo`, λ = 0) or step-wise GRPO (`step_grpo`, λ = 0.5 unless
/// set) on the policy of the last `sft` stage before it (the last
/// [`PolicyCheckpoint`] given), which is also the frozen KL reference. Each iteration's statistics go to `metrics.jsonl`
/// as it finishes, on the train split (`loss/grpo`, `rollout/reward/outcome`,
/// each `rollout/reward/<term>` at the sampled rollouts' final lists, `advantage/mean`,
/// `advantage/std`, `kl` with `kl/k3` and, where the family enumerates its
/// choices, `kl/exact`, `entropy`, `lr`, `refusal_rate`), with the greedy
/// lists' metrics on the validation split every `eval_every` iterations;
/// the loggers also get histograms of the rollouts' step rewards and list
/// sizes.
#[derive(Debug)]
pub struct GrpoStage {
    kind: &'static str,
    settings: GrpoSettings,
}

impl GrpoStage {
    pub fn grpo(settings: GrpoSettings) -> Result<Self, String> {
        if settings.lambda() != 0.0 {
            return Err(
                "field `step_weight`: `grpo` is plain GRPO (step_weight 0); use `step_grpo` for step-wise credit"
                    .into(),
            );
        }
        settings.validate().map_err(|e| e.to_string())?;
        Ok(Self {
            kind: "grpo",
            settings,
        })
    }

    pub fn step_grpo(mut settings: GrpoSettings) -> Result<Self, String> {
        settings.step_weight = Some(settings.step_weight.unwrap_or(0.5));
        settings.validate().map_err(|e| e.to_string())?;
        Ok(Self {
            kind: "step_grpo",
            settings,
        })
    }
}

impl Stage for GrpoStage {
    fn kind(&self) -> &str {
        self.kind
    }

    fn method(&self) -> &str {
        self.settings.name.as_deref().unwrap_or(self.kind)
    }

    fn contract(&self) -> super::Contract {
        super::Contract {
            needs: vec![Need::latest::<PolicyCheckpoint>()],
            records: Some(vec![self.method().to_string()]),
            ..super::Contract::default()
        }
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let from = ctx.artifacts.latest::<PolicyCheckpoint>()?.1.0.clone();
        let s = &self.settings;
        train_and_record(
            ctx,
            self.method(),
            s,
            s.eval_every,
            s.patients,
            s.iterations,
            |policy, devices, job, observer| policy.grpo(devices, &from, job, observer),
        )
    }
}
