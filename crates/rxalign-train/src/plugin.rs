//! A policy family as a plugin of the experiment file's `policy` slot, as
//! one unit: its settings (validated when the file is read), the family it
//! builds on a run's data, and the shared loops on the run's device. The
//! family-agnostic `sft`, `grpo` and `step_grpo` stages train whatever
//! family the file names through [`TrainablePolicy`]; models pass from
//! stage to stage as checkpoints, so no stage holds a backend's tensors.
//!
//! A family (built in or a researcher's own) implements
//! [`PolicyFamily`] and [`FamilyConfig`] (both in the floor,
//! `rxalign-policy`) in its own crate and registers the config under its
//! kind (see `examples/tabular-family`).

use std::fmt;
use std::path::Path;

use rxalign_core::{Action, DrugSet, Rng, Trajectory, seeded_rng};
use rxalign_policy::checkpoint;
use rxalign_policy::device::{TrainDevice, TrainDevices};
use rxalign_policy::family::{Effect, FamilyConfig, FamilyContext, PolicyFamily};
use rxalign_policy::{PolicyError, with_backend};

use crate::TrainError;
use crate::episodes::Episodes;
#[cfg(feature = "distributed")]
use crate::grpo::train_grpo_on;
use crate::grpo::{GrpoJob, train_grpo};
use crate::observer::TrainObserver;
#[cfg(feature = "distributed")]
use crate::parallel::{AllReduce, DataParallel};
#[cfg(feature = "distributed")]
use crate::sft::train_sft_on;
use crate::sft::{SftJob, train_sft};
#[cfg(feature = "distributed")]
use rxalign_policy::device::CudaTrainBackend;

/// The `policy` slot's plugin: settings checked when the file is read, a
/// family built for each run.
pub trait PolicyKind: fmt::Debug + Send + Sync {
    fn kind(&self) -> &str;

    /// At most this many decisions per episode.
    fn budget(&self) -> usize;

    /// The family on a run's data.
    fn build(&self, ctx: &FamilyContext<'_>) -> Result<Box<dyn TrainablePolicy>, TrainError>;
}

/// A [`FamilyConfig`] registered under its kind.
#[derive(Clone, Debug)]
pub struct FamilyKind<C> {
    kind: String,
    config: C,
}

impl<C: FamilyConfig> FamilyKind<C> {
    /// The plugin of `config`, checked.
    pub fn new(kind: &str, config: C) -> Result<Self, PolicyError> {
        config.validate()?;
        Ok(Self {
            kind: kind.to_string(),
            config,
        })
    }
}

impl<C: FamilyConfig> PolicyKind for FamilyKind<C> {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn budget(&self) -> usize {
        self.config.budget()
    }

    fn build(&self, ctx: &FamilyContext<'_>) -> Result<Box<dyn TrainablePolicy>, TrainError> {
        Ok(Box::new(Built {
            family: self.config.build(ctx)?,
            budget: self.config.budget(),
        }))
    }
}

/// A family on a run's data, trained and decoded on the run's device.
pub trait TrainablePolicy: fmt::Debug + Send + Sync {
    fn kind(&self) -> &str;

    /// Whether its output can be a refusal (see `PolicyFamily::refuses`).
    fn refuses(&self) -> bool;

    /// At most this many decisions per episode.
    fn budget(&self) -> usize;

    /// SFT from a fresh model on `devices` (several: each batch sharded
    /// over them); the result is `job.checkpoint`.
    fn sft(
        &self,
        devices: &TrainDevices,
        job: &SftJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError>;

    /// (Step-wise) GRPO from the model of checkpoint `from`, which is also
    /// the frozen reference, on `devices` (several: each update sharded
    /// over them); the result is `job.checkpoint`.
    fn grpo(
        &self,
        devices: &TrainDevices,
        from: &Path,
        job: &GrpoJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError>;

    /// Runs the model of `checkpoint` on `starts` (greedily or sampled, as
    /// `episodes` says).
    fn decode(
        &self,
        device: TrainDevice,
        checkpoint: &Path,
        episodes: &Episodes<'_>,
        starts: Vec<(usize, DrugSet)>,
        rng: &mut Rng,
    ) -> Result<Vec<Decoded>, TrainError>;
}

/// A decoded episode, whatever the family's decisions.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub visit: usize,
    pub final_list: DrugSet,
    /// `Phi(S_T) − Phi(S_0)`.
    pub outcome: f64,
    /// Decisions taken; how many of them were output lines (edits and
    /// refusals, not stop or the end of an answer); how many were refusals.
    pub steps: usize,
    pub lines: usize,
    pub refusals: usize,
    pub trajectory: Option<Trajectory>,
}

#[derive(Debug)]
struct Built<F> {
    family: F,
    budget: usize,
}

/// A model of `family` on `B` with the parameters of `checkpoint`.
fn load<F: PolicyFamily, B: burn::tensor::backend::Backend>(
    family: &F,
    checkpoint: &Path,
    device: &B::Device,
) -> Result<F::Model<B>, TrainError> {
    // The fresh parameters are replaced at once; their generator does not matter.
    let fresh = family.init::<B>(&mut seeded_rng(0, "checkpoint-load"), device)?;
    Ok(checkpoint::load_module(checkpoint, fresh, device)?)
}

fn required<'p>(checkpoint: Option<&'p Path>, stage: &str) -> Result<&'p Path, TrainError> {
    checkpoint.ok_or_else(|| TrainError::Invalid(format!("{stage}: a checkpoint path is required")))
}

/// Data parallel over several CUDA GPUs: the shards' gradients summed by
/// NCCL's all-reduce. Builds without the `distributed` feature refuse a
/// device list when the file is read; these say so if one gets here all
/// the same.
impl<F: PolicyFamily + 'static> Built<F> {
    fn sft_sharded(
        &self,
        devices: &TrainDevices,
        job: &SftJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        #[cfg(feature = "distributed")]
        {
            let parallel = cuda_parallel(devices)?;
            train_sft_on::<F, CudaTrainBackend, _>(&self.family, job, observer, &parallel).map(drop)
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = (job, observer);
            Err(no_data_parallel(devices))
        }
    }

    fn grpo_sharded(
        &self,
        devices: &TrainDevices,
        from: &Path,
        job: &GrpoJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        #[cfg(feature = "distributed")]
        {
            let parallel = cuda_parallel(devices)?;
            let start = F::into_trainable(load::<F, CudaTrainBackend>(&self.family, from, parallel.first())?);
            train_grpo_on::<F, CudaTrainBackend, _>(&self.family, start, job, observer, &parallel).map(drop)
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = (from, job, observer);
            Err(no_data_parallel(devices))
        }
    }
}

#[cfg(not(feature = "distributed"))]
fn no_data_parallel(devices: &TrainDevices) -> TrainError {
    TrainError::Invalid(format!(
        "devices {devices}: this build cannot shard training over several devices; build with `--features cuda,distributed`"
    ))
}

/// The CUDA GPUs of `devices`, their gradients summed by NCCL.
#[cfg(feature = "distributed")]
fn cuda_parallel(devices: &TrainDevices) -> Result<DataParallel<CudaTrainBackend, AllReduce>, TrainError> {
    let indices = devices.cuda_indices().ok_or_else(|| {
        TrainError::Invalid(format!("devices {devices}: data parallel runs on CUDA GPUs only"))
    })?;
    DataParallel::new(
        indices
            .into_iter()
            .map(|index| burn::backend::cuda::CudaDevice { index })
            .collect(),
        AllReduce,
    )
}

impl<F: PolicyFamily + 'static> TrainablePolicy for Built<F> {
    fn kind(&self) -> &str {
        self.family.kind()
    }

    fn refuses(&self) -> bool {
        self.family.refuses()
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn sft(
        &self,
        devices: &TrainDevices,
        job: &SftJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        required(job.checkpoint, "SFT")?;
        if devices.as_slice().len() > 1 {
            return self.sft_sharded(devices, job, observer);
        }
        with_backend!(devices.first(), |dev: B| {
            train_sft::<F, B>(&self.family, job, observer, &dev).map(drop)
        })
    }

    fn grpo(
        &self,
        devices: &TrainDevices,
        from: &Path,
        job: &GrpoJob<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        required(job.checkpoint, "GRPO")?;
        if devices.as_slice().len() > 1 {
            return self.grpo_sharded(devices, from, job, observer);
        }
        with_backend!(devices.first(), |dev: B| {
            let start = F::into_trainable::<B>(load::<F, B>(&self.family, from, &dev)?);
            train_grpo::<F, B>(&self.family, start, job, observer, &dev).map(drop)
        })
    }

    fn decode(
        &self,
        device: TrainDevice,
        checkpoint: &Path,
        episodes: &Episodes<'_>,
        starts: Vec<(usize, DrugSet)>,
        rng: &mut Rng,
    ) -> Result<Vec<Decoded>, TrainError> {
        with_backend!(device, |dev: B| {
            let model = load::<F, <B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                &self.family,
                checkpoint,
                &dev,
            )?;
            let finished = episodes.run(&self.family, &model, starts, rng, &dev)?;
            Ok(finished
                .into_iter()
                .map(|r| Decoded {
                    visit: r.visit,
                    outcome: r.outcome,
                    steps: r.steps.len(),
                    lines: r
                        .steps
                        .iter()
                        .filter(|s| !matches!(s.effect, Effect::NextPrompt | Effect::Act(Action::Stop)))
                        .count(),
                    refusals: r.steps.iter().filter(|s| s.refused).count(),
                    final_list: r.final_list,
                    trajectory: r.trajectory,
                })
                .collect())
        })
    }
}
