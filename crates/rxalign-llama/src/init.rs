//! Initialisation of the language models trained from scratch and of fresh
//! LoRA adapters, from rxalign's own seeded generator (never the backend's,
//! which is global to the process: runs side by side would share it and stop
//! being reproducible).

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use rand::Rng as _;
use rxalign_core::Rng;

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
