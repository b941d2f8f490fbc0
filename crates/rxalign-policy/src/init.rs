//! Parameter initialisation from rxalign's own seeded generator (never the
//! backend's, which is global to the process: runs side by side would share
//! it and stop being reproducible).

use burn::module::{ModuleMapper, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use rand::Rng as _;
use rxalign_core::Rng;

/// A tensor of `U(−bound, bound)` values from `rng`.
pub(crate) fn uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    bound: f32,
    rng: &mut Rng,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A linear layer initialised as PyTorch's: `U(−1/√in, 1/√in)`.
pub(crate) fn linear<B: Backend>(d_in: usize, d_out: usize, rng: &mut Rng, device: &B::Device) -> Linear<B> {
    let bound = 1.0 / (d_in as f32).sqrt();
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    layer.weight = Param::from_tensor(uniform([d_in, d_out], bound, rng, device));
    layer.bias = Some(Param::from_tensor(uniform([d_out], bound, rng, device)));
    layer
}

/// The table of an embedding bag: one row of `U(−0.1, 0.1)` entries per
/// index.
pub(crate) fn bag_table<B: Backend>(
    n: usize,
    d: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Param::from_tensor(uniform([n, d], 0.1, rng, device))
}

/// Redraws every weight matrix of a module from `rng`: uniform in
/// `±1/sqrt(rows)` (burn stores a linear map input-major, so rows are its
/// fan-in); vectors (norms' gains) stay as they are. The language models
/// trained from scratch start from it.
pub(crate) struct Redraw<'r> {
    pub(crate) rng: &'r mut Rng,
}

impl<B: Backend> ModuleMapper<B> for Redraw<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        if D < 2 {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        Param::from_mapped_value(id, redrawn(&tensor, self.rng), mapper)
    }
}

/// Redraws every LoRA `A` matrix (`[d_in, rank]`, under a module path
/// `…/adapters/<slot>/a`) from `rng`, uniform in `±1/sqrt(d_in)` as PEFT
/// initialises it; everything else (the base, every `B`, still zero) is
/// left as is.
pub(crate) struct RedrawAdapters<'r> {
    rng: &'r mut Rng,
    /// The module path of the current parameter.
    path: Vec<String>,
}

impl<'r> RedrawAdapters<'r> {
    pub(crate) fn new(rng: &'r mut Rng) -> Self {
        RedrawAdapters {
            rng,
            path: Vec::new(),
        }
    }
}

impl<B: Backend> ModuleMapper<B> for RedrawAdapters<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let n = self.path.len();
        let is_a = D == 2 && n >= 3 && self.path[n - 3] == "adapters" && self.path[n - 1] == "a";
        if !is_a {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        Param::from_mapped_value(id, redrawn(&tensor, self.rng), mapper)
    }
}

/// A tensor of `tensor`'s shape drawn from `rng`, uniform in
/// `±1/sqrt(rows)` (rows: its first dimension, a linear map's fan-in in
/// burn's input-major layout); it trains as `tensor` did.
fn redrawn<B: Backend, const D: usize>(tensor: &Tensor<B, D>, rng: &mut Rng) -> Tensor<B, D> {
    let shape = tensor.shape();
    let dims = shape.dims::<D>();
    let bound = 1.0 / (dims[0] as f32).sqrt();
    let count: usize = dims.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound)
        .collect();
    let fresh = Tensor::<B, D>::from_data(TensorData::new(values, shape), &tensor.device());
    if tensor.is_require_grad() {
        fresh.require_grad()
    } else {
        fresh
    }
}
