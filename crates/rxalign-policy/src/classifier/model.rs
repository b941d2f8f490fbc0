//! The classifier's network: an embedding bag of the visit's features, a
//! hidden layer and a logit per drug.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::VisitFeatures;

/// The network's sizes (a burn config, built from the plain settings of an
/// experiment file).
#[derive(Config, Debug)]
pub struct DrugClassifierConfig {
    pub features: usize,
    pub drugs: usize,
    #[config(default = 128)]
    pub hidden: usize,
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl DrugClassifierConfig {
    pub fn for_features(features: &VisitFeatures, hidden: usize, dropout: f64) -> Self {
        Self::new(features.size(), features.drugs)
            .with_hidden(hidden)
            .with_dropout(dropout)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> DrugClassifier<B> {
        DrugClassifier {
            embedding: EmbeddingConfig::new(self.features, self.hidden)
                .with_initializer(nn::Initializer::Normal { mean: 0.0, std: 0.1 })
                .init(device),
            hidden: LinearConfig::new(self.hidden, self.hidden).init(device),
            output: LinearConfig::new(self.hidden, self.drugs).init(device),
            activation: Relu::new(),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// Scores every drug for a visit.
#[derive(Module, Debug)]
pub struct DrugClassifier<B: Backend> {
    embedding: Embedding<B>,
    hidden: Linear<B>,
    output: Linear<B>,
    activation: Relu,
    dropout: Dropout,
}

impl<B: Backend> DrugClassifier<B> {
    /// The logit of each drug.
    ///
    /// # Shapes
    /// - `indices`: `[batch, width]`
    /// - `mask`: `[batch, width]`
    /// - output: `[batch, drugs]`
    pub fn forward(&self, indices: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, width] = indices.dims();
        let embedded = self.embedding.forward(indices); // [batch, width, hidden]
        let masked = embedded * mask.reshape([batch, width, 1]); // [batch, width, hidden]
        let bag = masked.sum_dim(1).squeeze_dim::<2>(1); // [batch, hidden]
        let h = self
            .activation
            .forward(self.hidden.forward(self.dropout.forward(bag))); // [batch, hidden]
        let h = self.dropout.forward(h); // [batch, hidden]
        self.output.forward(h) // [batch, drugs]
    }
}
