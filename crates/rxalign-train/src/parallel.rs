//! Data parallel over the devices of one machine: each batch of a
//! gradient step (an SFT batch, a GRPO update) is cut into one shard per
//! device, each shard's gradients are computed on its device by a replica
//! of the model, the shards' gradients are summed, each weighted by its
//! shard's share of the batch (every loss of the loops is a mean over the
//! batch's items, so the weighted sum is the whole batch's gradient), and
//! the optimizer takes one step on the first device, which holds the model
//! and the optimizer's state; the replicas then take the parameters that
//! step changed.
//!
//! How the weighted gradients are summed is a [`Combine`]: [`Gather`]
//! copies them to the first device and adds them there (any backend; the
//! tests shard over one CPU device with it), and, in builds with the
//! `distributed` feature, `AllReduce` sums them with burn's collective
//! all-reduce (`DistributedBackend::all_reduce`: NCCL on CUDA).
//!
//! With one device nothing is sharded: the step is exactly the unsharded
//! one (the same generator, no weighting), so single-device runs are the
//! same bit for bit as before this module existed.

use std::any::Any;
use std::collections::HashMap;
use std::ops::Range;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Rng, seeded_rng};

use crate::TrainError;

/// `n` items cut into at most `k` contiguous shards, in order and as even
/// as can be (the first `n % k` shards one item longer); no shard is empty,
/// so there are fewer than `k` where `n < k`.
pub fn shard_ranges(n: usize, k: usize) -> Vec<Range<usize>> {
    let k = k.max(1).min(n);
    if k == 0 {
        return Vec::new();
    }
    let (size, longer) = (n / k, n % k);
    let mut start = 0;
    (0..k)
        .map(|i| {
            let len = size + usize::from(i < longer);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// The generator of one shard of a sharded step: a stream of its own,
/// fixed by the run's seed, the loop (`stream`), the step (epoch or
/// iteration), the batch within it and the shard, so that a sharded run is
/// reproducible and resumes exactly (the loop's own generator is not drawn
/// from).
pub fn shard_rng(seed: u64, stream: &str, step: usize, batch: usize, shard: usize) -> Rng {
    seeded_rng(seed, &format!("{stream}/step-{step}/batch-{batch}/shard-{shard}"))
}

/// How the shards' gradients, each weighted by its shard's share of the
/// batch, become one sum on the first device.
pub trait Combine<B: AutodiffBackend> {
    /// `shards[i]`: the gradients computed on `devices[i]` with their
    /// weight (`None`: that device had no shard). Returns, on `devices[0]`,
    /// `Σ weight · gradient` for every parameter of `model` with a gradient
    /// on some device.
    fn combine<M: AutodiffModule<B>>(
        &self,
        model: &M,
        shards: Vec<Option<(GradientsParams, f64)>>,
        devices: &[B::Device],
    ) -> GradientsParams;
}

/// Sums the weighted gradients on the first device, each copied there:
/// any backend, and the reference the all-reduce must agree with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gather;

impl<B: AutodiffBackend> Combine<B> for Gather {
    fn combine<M: AutodiffModule<B>>(
        &self,
        model: &M,
        shards: Vec<Option<(GradientsParams, f64)>>,
        devices: &[B::Device],
    ) -> GradientsParams {
        let mut sum = GatherSum::<B> {
            shards,
            device: &devices[0],
            out: GradientsParams::new(),
        };
        model.visit(&mut sum);
        sum.out
    }
}

struct GatherSum<'a, B: AutodiffBackend> {
    shards: Vec<Option<(GradientsParams, f64)>>,
    device: &'a B::Device,
    out: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GatherSum<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let mut sum: Option<Tensor<B::InnerBackend, D>> = None;
        for (grads, weight) in self.shards.iter_mut().flatten() {
            if let Some(g) = grads.remove::<B::InnerBackend, D>(param.id) {
                let g = g.mul_scalar(*weight).to_device(self.device);
                sum = Some(match sum {
                    Some(s) => s + g,
                    None => g,
                });
            }
        }
        if let Some(s) = sum {
            self.out.register(param.id, s);
        }
    }
}

/// Sums the weighted gradients with burn's collective all-reduce
/// (`DistributedBackend::all_reduce`, NCCL's on CUDA): every parameter's
/// gradient is reduced across the devices in the module's order (a device
/// without a shard, or whose shard left the parameter unused, adds zeros),
/// and the first device's sum is kept.
#[cfg(feature = "distributed")]
#[derive(Clone, Copy, Debug, Default)]
pub struct AllReduce;

#[cfg(feature = "distributed")]
impl<B> Combine<B> for AllReduce
where
    B: AutodiffBackend,
    B::InnerBackend: burn_backend::distributed::DistributedBackend,
{
    fn combine<M: AutodiffModule<B>>(
        &self,
        model: &M,
        shards: Vec<Option<(GradientsParams, f64)>>,
        devices: &[B::Device],
    ) -> GradientsParams {
        use burn::tensor::backend::DeviceOps;
        let mut sum = AllReduceSum::<B> {
            shards,
            devices,
            ids: devices.iter().map(DeviceOps::id).collect(),
            out: GradientsParams::new(),
        };
        model.visit(&mut sum);
        sum.out
    }
}

#[cfg(feature = "distributed")]
struct AllReduceSum<'a, B: AutodiffBackend> {
    shards: Vec<Option<(GradientsParams, f64)>>,
    devices: &'a [B::Device],
    ids: Vec<burn_backend::DeviceId>,
    out: GradientsParams,
}

#[cfg(feature = "distributed")]
impl<B> ModuleVisitor<B> for AllReduceSum<'_, B>
where
    B: AutodiffBackend,
    B::InnerBackend: burn_backend::distributed::DistributedBackend,
{
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        use burn::tensor::TensorPrimitive;
        use burn_backend::distributed::{DistributedBackend, ReduceOperation};
        let weighted: Vec<Option<Tensor<B::InnerBackend, D>>> = self
            .shards
            .iter_mut()
            .map(|shard| {
                let (grads, weight) = shard.as_mut()?;
                Some(grads.remove::<B::InnerBackend, D>(param.id)?.mul_scalar(*weight))
            })
            .collect();
        // The parameter is reduced on every device or on none: NCCL needs
        // every rank to take part in each all-reduce, in the same order.
        let Some(template) = weighted.iter().flatten().next().cloned() else {
            return;
        };
        let collective: Vec<_> = weighted
            .into_iter()
            .zip(self.devices)
            .map(|(g, device)| {
                let g = g.unwrap_or_else(|| template.zeros_like().to_device(device));
                B::InnerBackend::all_reduce(
                    g.into_primitive().tensor(),
                    ReduceOperation::Sum,
                    self.ids.clone(),
                )
            })
            .collect();
        // Every device's part is submitted before any is waited for.
        let mut reduced: Vec<_> = collective.into_iter().map(|c| c.resolve()).collect();
        let first = reduced.swap_remove(0);
        self.out.register(
            param.id,
            Tensor::<B::InnerBackend, D>::from_primitive(TensorPrimitive::Float(first)),
        );
    }
}

/// The devices a loop shards its batches over (the first holds the model
/// and the optimizer) and how the shards' gradients are combined.
#[derive(Clone, Debug)]
pub struct DataParallel<B: AutodiffBackend, C = Gather> {
    devices: Vec<B::Device>,
    combine: C,
}

impl<B: AutodiffBackend> DataParallel<B, Gather> {
    /// Training on `device` alone: nothing sharded.
    pub fn single(device: &B::Device) -> Self {
        Self {
            devices: vec![device.clone()],
            combine: Gather,
        }
    }
}

impl<B: AutodiffBackend, C: Combine<B>> DataParallel<B, C> {
    /// Shards over `devices` (at least one; the first holds the model),
    /// their gradients summed by `combine`.
    pub fn new(devices: Vec<B::Device>, combine: C) -> Result<Self, TrainError> {
        if devices.is_empty() {
            return Err(TrainError::Invalid(
                "data parallel: at least one device is needed".into(),
            ));
        }
        Ok(Self { devices, combine })
    }

    /// The device of the model and the optimizer.
    pub fn first(&self) -> &B::Device {
        &self.devices[0]
    }

    /// Every device, the first first.
    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// The replicas of a loop's model, made at its first sharded step.
    pub fn replicas<M: AutodiffModule<B>>(&self) -> Replicas<'_, B, C, M> {
        Replicas {
            plan: self,
            models: Vec::new(),
            changed: Vec::new(),
        }
    }
}

/// One shard of a step, for the function that computes its gradients.
#[derive(Debug)]
pub struct ShardCall<'a, B: AutodiffBackend, M> {
    /// The shard's index, which is also its device's.
    pub index: usize,
    /// Whether the batch is sharded over several devices; if not, the
    /// shard is the whole batch on the model itself, and draws from the
    /// loop's generator as an unsharded step does.
    pub sharded: bool,
    /// The shard's items of the batch.
    pub range: Range<usize>,
    /// The model on the shard's device.
    pub model: &'a M,
    pub device: &'a B::Device,
}

/// A loop's model on the devices after the first, kept in step with it.
#[derive(Debug)]
pub struct Replicas<'p, B: AutodiffBackend, C, M> {
    plan: &'p DataParallel<B, C>,
    /// The model on `plan.devices[i + 1]`.
    models: Vec<M>,
    /// The parameters the last combined gradients step.
    changed: Vec<ParamId>,
}

/// The output of each shard of a step, with its weight.
pub type ShardOutputs<T> = Vec<(f64, T)>;

impl<B: AutodiffBackend, C: Combine<B>, M: AutodiffModule<B>> Replicas<'_, B, C, M> {
    /// The gradients of a batch of `n` items of `model`: one shard per
    /// device (fewer where `n` is smaller), `grads` computing a shard's
    /// gradients on its device and returning them with its output (no
    /// gradients: a loss that is not finite, say); the shards' gradients
    /// combined on the first device, each weighted by its share of the
    /// batch. Returns those gradients (none where a shard had none) and
    /// each shard's output with its weight. With one device the batch is
    /// one shard, computed on `model` itself, and its gradients are
    /// returned as they are.
    pub fn gradients<T>(
        &mut self,
        model: &M,
        n: usize,
        mut grads: impl FnMut(ShardCall<'_, B, M>) -> Result<(Option<GradientsParams>, T), TrainError>,
    ) -> Result<(Option<GradientsParams>, ShardOutputs<T>), TrainError> {
        let devices = &self.plan.devices;
        if devices.len() == 1 {
            let (g, out) = grads(ShardCall {
                index: 0,
                sharded: false,
                range: 0..n,
                model,
                device: &devices[0],
            })?;
            return Ok((g, vec![(1.0, out)]));
        }
        if self.models.is_empty() {
            self.models = devices[1..].iter().map(|d| model.clone().fork(d)).collect();
        }
        let mut shards: Vec<Option<(GradientsParams, f64)>> = (0..devices.len()).map(|_| None).collect();
        let mut outputs = Vec::new();
        let mut complete = true;
        for (index, range) in shard_ranges(n, devices.len()).into_iter().enumerate() {
            let weight = range.len() as f64 / n as f64;
            let on = if index == 0 {
                model
            } else {
                &self.models[index - 1]
            };
            let (g, out) = grads(ShardCall {
                index,
                sharded: true,
                range,
                model: on,
                device: &devices[index],
            })?;
            outputs.push((weight, out));
            match g {
                Some(g) => shards[index] = Some((g, weight)),
                None => complete = false,
            }
        }
        if !complete {
            return Ok((None, outputs));
        }
        let combined = self.plan.combine.combine(model, shards, devices);
        let mut present = Present {
            grads: &combined,
            ids: Vec::new(),
        };
        model.visit(&mut present);
        self.changed = present.ids;
        Ok((Some(combined), outputs))
    }

    /// After the optimizer stepped `model` with the last combined
    /// gradients: each replica takes the parameters that step changed
    /// (the others, such as a language model's frozen weights under LoRA,
    /// are copied once, when the replicas are made).
    pub fn stepped(&mut self, model: &M) {
        if self.models.is_empty() || self.changed.is_empty() {
            return;
        }
        let mut take = Take {
            ids: &self.changed,
            values: HashMap::new(),
        };
        model.visit(&mut take);
        let models = std::mem::take(&mut self.models);
        self.models = models
            .into_iter()
            .zip(&self.plan.devices[1..])
            .map(|(replica, device)| {
                replica.map(&mut Put::<B> {
                    values: &take.values,
                    device,
                })
            })
            .collect();
        self.changed.clear();
    }
}

/// The parameters of a module with a gradient in `grads`.
struct Present<'a> {
    grads: &'a GradientsParams,
    ids: Vec<ParamId>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Present<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.grads.get::<B::InnerBackend, D>(param.id).is_some() {
            self.ids.push(param.id);
        }
    }
}

/// The values of the parameters `ids` (each a `Tensor<B::InnerBackend, D>`).
struct Take<'a> {
    ids: &'a [ParamId],
    values: HashMap<ParamId, Box<dyn Any>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Take<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.ids.contains(&param.id) {
            self.values.insert(param.id, Box::new(param.val().inner()));
        }
    }
}

/// Replaces the parameters in `values` with theirs, copied to `device`.
struct Put<'a, B: AutodiffBackend> {
    values: &'a HashMap<ParamId, Box<dyn Any>>,
    device: &'a B::Device,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Put<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(value) = self
            .values
            .get(&param.id)
            .and_then(|v| v.downcast_ref::<Tensor<B::InnerBackend, D>>())
        else {
            return param;
        };
        let value = value.clone();
        let device = self.device;
        param.map(|old| {
            let tensor = Tensor::from_inner(value.to_device(device));
            if old.is_require_grad() {
                tensor.require_grad()
            } else {
                tensor
            }
        })
    }
}
