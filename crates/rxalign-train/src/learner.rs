//! The one training loop of SFT and GRPO, written once the way burn-train's
//! `Learner` owns its loop: resume from the checkpoint, the restored log
//! replayed to the observer, evaluation when due, selection (the last step,
//! or the best on validation with early stopping), a checkpoint after every
//! step and the observer's reports. A learner supplies only its step.

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Rng, seeded_rng};
use rxalign_policy::checkpoint;
use rxalign_policy::family::PolicyFamily;

use crate::TrainError;
use crate::job::Job;
use crate::observer::{self, StepLog, TrainObserver};
use crate::select::{Keeper, Select};

/// How a loop runs, beside its job.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoopPlan {
    /// The stream of the loop's generator, from the job's seed.
    pub stream: &'static str,
    /// The last step (epoch, iteration) this run trains.
    pub last: usize,
    pub select: Select,
    pub patience: usize,
    /// Whether the model the loop starts from is a candidate of the
    /// selection too, evaluated as step 0 (GRPO's start, the SFT policy).
    pub start_is_candidate: bool,
}

/// Runs steps `1..=plan.last` of a loop over `model` and `optim` (resumed
/// from `job.checkpoint` where one is written), `step` making each: it is
/// given the model, the optimizer, the loop's generator, the step's number
/// and the observer (for what the step reports as it goes, such as its
/// throughput), and returns the next model with the step's training
/// metrics.
/// Returns the model selected to hand on.
#[expect(
    clippy::too_many_arguments,
    reason = "the loop's inputs and the learner's step, each distinct"
)]
pub(crate) fn run_loop<F, B, O, S>(
    family: &F,
    job: &Job<'_, S>,
    plan: LoopPlan,
    model: F::Trainable<B>,
    optim: O,
    mut step: impl FnMut(
        F::Trainable<B>,
        &mut O,
        &mut Rng,
        usize,
        &mut dyn TrainObserver,
    ) -> Result<(F::Trainable<B>, StepLog), TrainError>,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<F::Trainable<B>, TrainError>
where
    F: PolicyFamily,
    B: AutodiffBackend,
    O: Optimizer<F::Trainable<B>, B>,
{
    let (mut model, mut optim, mut rng, mut log, first) = checkpoint::resume(
        job.checkpoint,
        model,
        optim,
        seeded_rng(job.seed, plan.stream),
        device,
    )?;
    let last = plan.last;
    for entry in &log {
        observer.step(entry, last).map_err(TrainError::Observer)?;
    }
    let keep = family.checkpoint_keeps();
    let mut keeper = Keeper::new(plan.select, plan.patience, job.checkpoint, keep);
    keeper.restore(&log);
    let evaluate = |model: &F::Trainable<B>, step: usize, observer: &mut dyn TrainObserver| {
        observer::evaluate(
            family,
            &model.valid(),
            job.cohort,
            job.reward,
            job.budget,
            job.eval,
            step,
            observer,
            device,
        )
    };
    if first == 1 && plan.start_is_candidate && plan.select == Select::Validation {
        let entry = StepLog {
            step: 0,
            evals: evaluate(&model, 0, observer)?,
            ..StepLog::default()
        };
        observer.step(&entry, last).map_err(TrainError::Observer)?;
        keeper.step(&entry, &model, &optim, &rng)?;
        log.push(entry);
    }
    let first = if keeper.stopped() { last + 1 } else { first };
    for n in first..=last {
        let (next, mut entry) = step(model, &mut optim, &mut rng, n, observer)?;
        model = next;
        if job.eval.due(n, last) {
            entry.evals = evaluate(&model, n, observer)?;
        }
        observer.step(&entry, last).map_err(TrainError::Observer)?;
        let stop = keeper.step(&entry, &model, &optim, &rng)?;
        log.push(entry);
        checkpoint::save_loop(job.checkpoint, keep, &model, &optim, n, &rng, &log)?;
        if stop {
            break;
        }
    }
    keeper.finish(model, &optim, &rng, &log, last, observer, device)
}
