//! The classifier's network: an embedding bag of the visit's features, a
//! hidden layer and a logit per drug.
//!
//! Parameters and dropout masks are drawn from rxalign's own seeded
//! generator, not the backend's: the backend's generator is global to the
//! process, so runs training side by side (`--jobs`, parallel tests) would
//! otherwise draw from one stream and stop being reproducible.

use burn::module::Param;
use burn::nn::{Linear, Relu};
use burn::prelude::*;
use rand::Rng as _;
use rxalign_core::Rng;

use crate::init::{bag_table, linear};
use rxalign_policy::features::VisitFeatures;

/// The network's sizes (a burn config, built from the plain settings of an
/// experiment file).
#[derive(Config, Debug)]
pub struct DrugClassifierConfig {
    pub features: usize,
    pub drugs: usize,
    #[config(default = 128)]
    pub hidden: usize,
}

impl DrugClassifierConfig {
    pub fn for_features(features: &VisitFeatures, hidden: usize) -> Self {
        Self::new(features.size(), features.drugs).with_hidden(hidden)
    }

    /// A network with parameters drawn from `rng`.
    pub fn init<B: Backend>(&self, rng: &mut Rng, device: &B::Device) -> DrugClassifier<B> {
        DrugClassifier {
            embedding: bag_table(self.features, self.hidden, rng, device),
            hidden: linear(self.hidden, self.hidden, rng, device),
            output: linear(self.hidden, self.drugs, rng, device),
            activation: Relu::new(),
        }
    }
}

/// Scores every drug for a visit.
#[derive(Module, Debug)]
pub struct DrugClassifier<B: Backend> {
    /// The embedding bag's table: `[features, hidden]`.
    embedding: Param<Tensor<B, 2>>,
    hidden: Linear<B>,
    output: Linear<B>,
    activation: Relu,
}

/// Dropout masks for one training batch: 0 for a dropped unit, `1/(1−p)`
/// for a kept one.
///
/// # Shapes
/// - `bag`, `hidden`: `[batch, hidden]`
#[derive(Debug)]
pub struct DropoutMasks<B: Backend> {
    pub bag: Tensor<B, 2>,
    pub hidden: Tensor<B, 2>,
}

impl<B: Backend> DropoutMasks<B> {
    pub fn draw(batch: usize, hidden: usize, p: f64, rng: &mut Rng, device: &B::Device) -> Self {
        let keep = (1.0 / (1.0 - p)) as f32;
        let mut mask = || {
            let values: Vec<f32> = (0..batch * hidden)
                .map(|_| if rng.random_bool(p) { 0.0 } else { keep })
                .collect();
            Tensor::from_data(TensorData::new(values, [batch, hidden]), device)
        };
        Self {
            bag: mask(),
            hidden: mask(),
        }
    }
}

impl<B: Backend> DrugClassifier<B> {
    /// The logit of each drug.
    ///
    /// # Shapes
    /// - `visits`: `[batch, features]`, multi-hot
    /// - output: `[batch, drugs]`
    pub fn forward(&self, visits: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_with(visits, None)
    }

    /// [`Self::forward`] with dropout masks while training.
    pub fn forward_with(&self, visits: Tensor<B, 2>, dropout: Option<DropoutMasks<B>>) -> Tensor<B, 2> {
        let mut bag = visits.matmul(self.embedding.val()); // [batch, hidden]
        let (drop_bag, drop_hidden) = match dropout {
            Some(m) => (Some(m.bag), Some(m.hidden)),
            None => (None, None),
        };
        if let Some(m) = drop_bag {
            bag = bag * m;
        }
        let mut h = self.activation.forward(self.hidden.forward(bag)); // [batch, hidden]
        if let Some(m) = drop_hidden {
            h = h * m;
        }
        self.output.forward(h) // [batch, drugs]
    }
}
