//! The one training loop of every learner (SFT, GRPO, the drug-level
//! classifier, LAMO), written once the way burn-train's `Learner` owns its
//! loop: resume from the checkpoint, the restored log replayed to the
//! observer, evaluation when due, selection (a [`Chooser`]: the last step,
//! the best on validation with early stopping, or a learner's own rule), a
//! checkpoint after every step and the observer's reports. A learner
//! supplies only its step and its evaluation ([`Learner`]).

use std::marker::PhantomData;
use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Rng, seeded_rng};
use rxalign_policy::checkpoint::{self, Generators};
use rxalign_policy::family::PolicyFamily;

use crate::TrainError;
use crate::job::Job;
use crate::observer::{self, Evaluation, StepLog, TrainObserver};
use crate::select::{Keeper, Select};

/// What a learner supplies to the loop: one step (an epoch, an iteration)
/// and the evaluation of a model.
pub trait Learner<B: AutodiffBackend> {
    /// The model it trains.
    type Model: AutodiffModule<B>;
    type Optim: Optimizer<Self::Model, B>;
    /// Its generators, kept in the checkpoint at their exact positions.
    type Rng: Generators;

    /// Step `step`: the next model and the step's training statistics (its
    /// `evals` are the loop's to fill). `observer` takes what the step
    /// reports as it goes (its throughput).
    fn step(
        &mut self,
        model: Self::Model,
        optim: &mut Self::Optim,
        rng: &mut Self::Rng,
        step: usize,
        observer: &mut dyn TrainObserver,
    ) -> Result<(Self::Model, StepLog), TrainError>;

    /// Whether the model after `step` of `last` is evaluated; by default
    /// after every step.
    fn due(&self, step: usize, last: usize) -> bool {
        let _ = (step, last);
        true
    }

    /// The evaluations of `model` after `step` (step 0: the start).
    fn evaluate(
        &mut self,
        model: &Self::Model,
        step: usize,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<Evaluation>, TrainError>;
}

/// Which model a loop hands on, decided from its log step by step; the
/// models it keeps on the way are kept beside the loop's checkpoint, so
/// that a resumed loop makes the same choice. [`Keeper`] is the usual rule
/// (the last step, or the best validation outcome with early stopping).
pub trait Chooser<B: AutodiffBackend, M: AutodiffModule<B>> {
    /// Takes in the steps restored from a checkpoint; `model` is the
    /// restored model (of the last restored step), a template for what the
    /// chooser reads back.
    fn restore(&mut self, log: &[StepLog], model: &M, device: &B::Device) -> Result<(), TrainError>;

    /// Whether the loop has stopped early (a restored loop stays stopped).
    fn stopped(&self) -> bool;

    /// Takes in a finished step whose model is `model`; returns whether to
    /// stop.
    fn step<O: Optimizer<M, B>, R: Generators>(
        &mut self,
        entry: &StepLog,
        model: &M,
        optim: &O,
        rng: &R,
    ) -> Result<bool, TrainError>;

    /// Ends the loop: hands the choice to `observer` and returns the model
    /// to hand on (`current` is the last step's), for a loop planned to end
    /// at `planned`; the loop's checkpoint then holds that model.
    #[expect(clippy::too_many_arguments, reason = "the loop's state at its end")]
    fn finish<O: Optimizer<M, B>, R: Generators>(
        self,
        current: M,
        optim: &O,
        rng: &R,
        log: &[StepLog],
        planned: usize,
        observer: &mut dyn TrainObserver,
        device: &B::Device,
    ) -> Result<M, TrainError>;
}

/// Where a loop keeps its state and how long it runs.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    /// Written after every step; one already there is resumed from.
    pub checkpoint: Option<&'a Path>,
    /// Which parameters the checkpoints keep.
    pub keep: checkpoint::Keep,
    /// The last step this run trains.
    pub last: usize,
    /// Whether the model the loop starts from is evaluated as step 0 and
    /// handed to the chooser (GRPO's start, the SFT policy).
    pub evaluate_start: bool,
}

/// Runs steps `1..=plan.last` of `learner` over `model`, `optim` and `rng`
/// (resumed from `plan.checkpoint` where one is written), `chooser`
/// deciding what is handed on. Returns that model.
#[expect(clippy::too_many_arguments, reason = "the loop's inputs, each distinct")]
pub fn drive<B, L, C>(
    learner: &mut L,
    mut chooser: C,
    plan: Plan<'_>,
    model: L::Model,
    optim: L::Optim,
    rng: L::Rng,
    observer: &mut dyn TrainObserver,
    device: &B::Device,
) -> Result<L::Model, TrainError>
where
    B: AutodiffBackend,
    L: Learner<B>,
    C: Chooser<B, L::Model>,
{
    let (mut model, mut optim, mut rng, mut log, first) =
        checkpoint::resume(plan.checkpoint, model, optim, rng, device)?;
    let last = plan.last;
    for entry in &log {
        observer.step(entry, last).map_err(TrainError::Observer)?;
    }
    chooser.restore(&log, &model, device)?;
    if first == 1 && plan.evaluate_start {
        let entry = StepLog {
            step: 0,
            evals: learner.evaluate(&model, 0, observer)?,
            ..StepLog::default()
        };
        observer.step(&entry, last).map_err(TrainError::Observer)?;
        chooser.step(&entry, &model, &optim, &rng)?;
        log.push(entry);
    }
    let first = if chooser.stopped() { last + 1 } else { first };
    for n in first..=last {
        let (next, mut entry) = learner.step(model, &mut optim, &mut rng, n, observer)?;
        model = next;
        if learner.due(n, last) {
            entry.evals = learner.evaluate(&model, n, observer)?;
        }
        observer.step(&entry, last).map_err(TrainError::Observer)?;
        let stop = chooser.step(&entry, &model, &optim, &rng)?;
        log.push(entry);
        checkpoint::save_loop(plan.checkpoint, plan.keep, &model, &optim, n, &rng, &log)?;
        if stop {
            break;
        }
    }
    chooser.finish(model, &optim, &rng, &log, last, observer, device)
}

/// How an SFT or GRPO loop runs, beside its job.
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

/// A family's learner: its step, and greedy episodes on the job's
/// evaluation visits.
struct FamilyLearner<'a, F, S, T, B: AutodiffBackend, O> {
    family: &'a F,
    job: &'a Job<'a, S>,
    step: T,
    device: &'a B::Device,
    /// The optimizer `step` takes.
    optim: PhantomData<fn(&mut O)>,
}

impl<F, S, T, B, O> Learner<B> for FamilyLearner<'_, F, S, T, B, O>
where
    F: PolicyFamily,
    B: AutodiffBackend,
    O: Optimizer<F::Trainable<B>, B>,
    T: FnMut(
        F::Trainable<B>,
        &mut O,
        &mut Rng,
        usize,
        &mut dyn TrainObserver,
    ) -> Result<(F::Trainable<B>, StepLog), TrainError>,
{
    type Model = F::Trainable<B>;
    type Optim = O;
    type Rng = Rng;

    fn step(
        &mut self,
        model: Self::Model,
        optim: &mut O,
        rng: &mut Rng,
        step: usize,
        observer: &mut dyn TrainObserver,
    ) -> Result<(Self::Model, StepLog), TrainError> {
        (self.step)(model, optim, rng, step, observer)
    }

    fn due(&self, step: usize, last: usize) -> bool {
        self.job.eval.due(step, last)
    }

    fn evaluate(
        &mut self,
        model: &Self::Model,
        step: usize,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<Evaluation>, TrainError> {
        let job = self.job;
        observer::evaluate(
            self.family,
            &model.valid(),
            job.cohort,
            job.reward,
            job.budget,
            job.eval,
            step,
            observer,
            self.device,
        )
    }
}

/// Runs steps `1..=plan.last` of an SFT or GRPO loop over `model` and
/// `optim` (resumed from `job.checkpoint` where one is written), `step`
/// making each: it is given the model, the optimizer, the loop's
/// generator, the step's number and the observer (for what the step
/// reports as it goes, such as its throughput), and returns the next model
/// with the step's training metrics.
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
    step: impl FnMut(
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
    let keep = family.checkpoint_keeps();
    let keeper = Keeper::new(plan.select, plan.patience, job.checkpoint, keep);
    let mut learner = FamilyLearner {
        family,
        job,
        step,
        device,
        optim: PhantomData,
    };
    drive(
        &mut learner,
        keeper,
        Plan {
            checkpoint: job.checkpoint,
            keep,
            last: plan.last,
            evaluate_start: plan.start_is_candidate && plan.select == Select::Validation,
        },
        model,
        optim,
        seeded_rng(job.seed, plan.stream),
        observer,
        device,
    )
}
