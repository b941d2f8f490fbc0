//! Parameter initialisation from rxalign's own seeded generator (never the
//! backend's, which is global to the process: runs side by side would share
//! it and stop being reproducible).

use burn::module::Param;
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
