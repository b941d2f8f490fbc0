use burn::tensor::backend::{AutodiffBackend, Backend};
use rxalign_core::run::MetricsRecord;
use rxalign_core::trajectory::ActionRecord;
use rxalign_core::{Prediction, Predictions, SplitName};
use rxalign_env::Episode;
use rxalign_env::trajectory::TrajectoryRecorder;
use rxalign_policy::list::{SftSettings, TrainedListPolicy, train_sft};
use rxalign_policy::with_backend;

use super::{RunContext, SftHandoff, Stage};
use crate::ExperimentError;

/// Supervised fine-tuning of the list policy on expert edit sequences
/// (from corrupted ground truths to the ground truth), then greedy decoding
/// from the run's start lists. Each epoch's mean cross-entropy goes to
/// `metrics.jsonl` (`loss/sft`); the kept trajectories are the policy's own
/// decoded steps, each with its probability.
#[derive(Debug)]
pub struct SftStage {
    settings: SftSettings,
}

impl SftStage {
    pub fn new(settings: SftSettings) -> Self {
        Self { settings }
    }
}

impl Stage for SftStage {
    fn kind(&self) -> &str {
        "sft"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        with_backend!(ctx.device, |device: B| self.run_on::<B>(ctx, &device))
    }
}

impl SftStage {
    fn run_on<B: AutodiffBackend>(
        &self,
        ctx: &mut RunContext<'_>,
        device: &B::Device,
    ) -> Result<(), ExperimentError> {
        let data = ctx.data;
        let cohort = &data.cohort;
        let start = ctx.start.clone();
        let run_starts =
            |v: usize, rng: &mut rxalign_core::Rng| start.start(cohort, v, rng).map_err(|e| e.to_string());
        let (trained, _) = train_sft::<B>(
            cohort,
            &ctx.features,
            &ctx.split.train,
            &self.settings,
            &run_starts,
            ctx.seed,
            Some(&ctx.checkpoint),
            device,
        )
        .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let records: Vec<MetricsRecord> = trained
            .log
            .iter()
            .map(|(epoch, loss)| {
                MetricsRecord::new(
                    *epoch as u64,
                    "train",
                    "sft",
                    [("loss/sft".to_string(), Some(*loss))].into_iter().collect(),
                )
            })
            .collect();
        ctx.append_metrics(&records)?;
        ctx.sft = Some(SftHandoff {
            checkpoint: ctx.checkpoint.clone(),
            hidden: self.settings.hidden,
            budget: self.settings.budget,
        });
        evaluate_policy(ctx, "sft", self.settings.epochs as u64, &trained)?;
        Ok(())
    }
}

/// Decodes a list policy greedily from the run's start lists on every
/// evaluation split and records it, keeping its own trajectories (each
/// step with its probability) for the first test visits.
pub(crate) fn evaluate_policy<B: Backend>(
    ctx: &mut RunContext<'_>,
    method: &str,
    step: u64,
    trained: &TrainedListPolicy<B>,
) -> Result<(), ExperimentError> {
    let data = ctx.data;
    let cohort = &data.cohort;
    let mut visits = Vec::new();
    for name in ctx.eval.split_names()? {
        visits.extend(ctx.split.indices(name, cohort.visits.len()));
    }
    visits.sort_unstable();
    visits.dedup();
    let starts = visits
        .iter()
        .map(|&v| ctx.start.clone().start(cohort, v, ctx.rng))
        .collect::<Result<Vec<_>, _>>()?;
    let decoded = trained.decode(cohort, &visits, starts.clone());
    let predictions = Predictions {
        by_visit: visits
            .iter()
            .zip(&decoded)
            .map(|(&v, (list, _))| {
                (
                    v,
                    Prediction {
                        drugs: list.clone(),
                        scores: None,
                    },
                )
            })
            .collect(),
    };
    // The policy's own trajectories of the first test visits.
    let test: std::collections::HashSet<usize> = ctx
        .split
        .indices(SplitName::Test, cohort.visits.len())
        .into_iter()
        .collect();
    let mut kept = Vec::new();
    for ((&v, start), (_, steps)) in visits.iter().zip(starts).zip(&decoded) {
        if kept.len() == ctx.eval.trajectories {
            break;
        }
        if !test.contains(&v) {
            continue;
        }
        let mut episode = Episode::new(
            ctx.reward,
            &cohort.visits[v].drugs,
            &cohort.ddi,
            start,
            trained.budget,
        );
        let mut recorder = TrajectoryRecorder::begin(cohort, v, method, "test", ctx.reward, &episode);
        for s in steps {
            let r = episode.step(s.action)?;
            recorder.record(
                ActionRecord::from_action(s.action, &cohort.drugs),
                Some(s.probability),
                r,
                &episode,
            );
        }
        kept.push(recorder.finish(&episode));
    }
    ctx.record_method_with(method, step, &predictions, Some(kept))?;
    Ok(())
}
