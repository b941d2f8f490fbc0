use burn::tensor::backend::AutodiffBackend;
use rxalign_core::run::MetricsRecord;
use rxalign_core::seeded_rng;
use rxalign_policy::list::{GrpoSettings, ListPolicyConfig, train_grpo};
use rxalign_policy::with_backend;

use super::sft::evaluate_policy;
use super::{RunContext, Stage};
use crate::ExperimentError;

/// GRPO (`grpo`, λ = 0) or step-wise GRPO (`step_grpo`, λ = 0.5 unless
/// set) on the SFT list policy, which must come first; its per-iteration
/// statistics go to `metrics.jsonl` on the train split (`loss/grpo`,
/// `reward/outcome`, each `reward/<term>` at the rollouts' final lists,
/// `advantage/mean`, `advantage/std`, `kl`, `entropy`, `lr`), and the
/// loggers also get histograms of the rollouts' step rewards and list
/// sizes.
#[derive(Debug)]
pub struct GrpoStage {
    name: &'static str,
    settings: GrpoSettings,
}

impl GrpoStage {
    pub fn grpo(settings: GrpoSettings) -> Result<Self, String> {
        if settings.lambda() != 0.0 {
            return Err("`grpo` is plain GRPO (step_weight 0); use `step_grpo` for step-wise credit".into());
        }
        Ok(Self {
            name: "grpo",
            settings,
        })
    }

    pub fn step_grpo(mut settings: GrpoSettings) -> Self {
        settings.step_weight = Some(settings.step_weight.unwrap_or(0.5));
        Self {
            name: "step_grpo",
            settings,
        }
    }
}

impl Stage for GrpoStage {
    fn kind(&self) -> &str {
        self.name
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        with_backend!(ctx.device, |device: B| self.run_on::<B>(ctx, &device))
    }
}

impl GrpoStage {
    fn run_on<B: AutodiffBackend>(
        &self,
        ctx: &mut RunContext<'_>,
        device: &B::Device,
    ) -> Result<(), ExperimentError> {
        let Some(handoff) = ctx.sft.clone() else {
            return Err(ExperimentError::Invalid(format!(
                "`{}` needs an `sft` stage before it",
                self.name
            )));
        };
        // The SFT policy, read from its checkpoint (its initial parameters
        // are replaced at once, so their generator does not matter).
        let fresh = ListPolicyConfig::for_features(&ctx.features, handoff.hidden)
            .init::<B>(&mut seeded_rng(0, "sft-handoff"), device);
        let sft = rxalign_policy::checkpoint::load_module(&handoff.checkpoint, fresh, device)
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let budget = handoff.budget;
        let data = ctx.data;
        let cohort = &data.cohort;
        let start = ctx.start.clone();
        let starts =
            |v: usize, rng: &mut rxalign_core::Rng| start.start(cohort, v, rng).map_err(|e| e.to_string());
        let (aligned, log) = train_grpo(
            sft,
            ctx.features.clone(),
            cohort,
            &ctx.split.train,
            &starts,
            ctx.reward,
            &self.settings,
            budget,
            ctx.seed,
            Some(&ctx.checkpoint),
            device,
        )
        .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let records: Vec<MetricsRecord> = log
            .iter()
            .map(|l| {
                MetricsRecord::new(
                    l.iteration as u64,
                    "train",
                    self.name,
                    [
                        ("loss/grpo", l.loss),
                        ("reward/outcome", l.mean_outcome),
                        ("advantage/mean", l.mean_advantage),
                        ("advantage/std", l.std_advantage),
                        ("kl", l.kl),
                        ("entropy", l.entropy),
                        ("lr", l.lr),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Some(v)))
                    .chain(
                        l.mean_terms
                            .iter()
                            .map(|(k, v)| (format!("reward/{k}"), Some(*v))),
                    )
                    .collect(),
                )
            })
            .collect();
        ctx.append_metrics(&records)?;
        for l in &log {
            let step = l.iteration as u64;
            ctx.log_histogram(&format!("{}/train/step_reward", self.name), step, &l.step_rewards)?;
            ctx.log_histogram(&format!("{}/train/list_size", self.name), step, &l.list_sizes)?;
        }
        evaluate_policy(ctx, self.name, self.settings.iterations as u64, &aligned)
    }
}
