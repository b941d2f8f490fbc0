//! The action-head network: the visit (an embedding bag of its codes and
//! previous drugs) and the current list (an embedding bag of its drugs)
//! give the logits of every action; invalid actions are masked.

use burn::nn::{Embedding, Linear, Relu};
use burn::prelude::*;
use rxalign_core::{Action, Cohort, DrugSet, Rng};

use crate::classifier::VisitFeatures;
use crate::init::{embedding, linear};

/// The logit given to masked actions.
pub const MASKED: f32 = -1.0e9;

/// Sizes of the list policy.
#[derive(Config, Debug)]
pub struct ListPolicyConfig {
    pub features: usize,
    pub drugs: usize,
    #[config(default = 128)]
    pub hidden: usize,
}

impl ListPolicyConfig {
    pub fn for_features(features: &VisitFeatures, hidden: usize) -> Self {
        Self::new(features.size(), features.drugs).with_hidden(hidden)
    }

    /// A policy with parameters drawn from `rng` (never from the backend's
    /// process-wide generator).
    pub fn init<B: Backend>(&self, rng: &mut Rng, device: &B::Device) -> ListPolicy<B> {
        ListPolicy {
            visit: embedding(self.features, self.hidden, rng, device),
            list: embedding(self.drugs + 1, self.hidden, rng, device),
            hidden: linear(2 * self.hidden, self.hidden, rng, device),
            actions: linear(self.hidden, Action::space(self.drugs), rng, device),
            activation: Relu::new(),
        }
    }
}

/// Scores every action of a state.
#[derive(Module, Debug)]
pub struct ListPolicy<B: Backend> {
    visit: Embedding<B>,
    list: Embedding<B>,
    hidden: Linear<B>,
    actions: Linear<B>,
    activation: Relu,
}

/// A batch of states: visits with their current lists.
///
/// # Shapes
/// - `visit`, `visit_mask`: `[batch, width]` (see [`crate::classifier::Batch`])
/// - `list`, `list_mask`: `[batch, list_width]`, padded with `drugs`
/// - `valid`: `[batch, 2·drugs + 1]`, 0 for a valid action, [`MASKED`] otherwise
#[derive(Clone, Debug)]
pub struct StateBatch<B: Backend> {
    pub visit: Tensor<B, 2, Int>,
    pub visit_mask: Tensor<B, 2>,
    pub list: Tensor<B, 2, Int>,
    pub list_mask: Tensor<B, 2>,
    pub valid: Tensor<B, 2>,
}

impl<B: Backend> StateBatch<B> {
    pub fn new(
        features: &VisitFeatures,
        cohort: &Cohort,
        states: &[(usize, &DrugSet)],
        device: &B::Device,
    ) -> Self {
        let n = states.len();
        let drugs = cohort.drug_count();
        let bags: Vec<Vec<i64>> = states.iter().map(|(v, _)| features.bag(cohort, *v)).collect();
        let width = bags.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let list_width = states.iter().map(|(_, l)| l.len()).max().unwrap_or(0).max(1);
        let mut visit = vec![features.padding() as i64; n * width];
        let mut visit_mask = vec![0f32; n * width];
        let mut list = vec![drugs as i64; n * list_width];
        let mut list_mask = vec![0f32; n * list_width];
        let space = Action::space(drugs);
        let mut valid = vec![0f32; n * space];
        for (row, ((_, l), bag)) in states.iter().zip(&bags).enumerate() {
            for (k, &f) in bag.iter().enumerate() {
                visit[row * width + k] = f;
                visit_mask[row * width + k] = 1.0;
            }
            for (k, d) in l.iter().enumerate() {
                list[row * list_width + k] = d as i64;
                list_mask[row * list_width + k] = 1.0;
            }
            for d in 0..drugs {
                // Adding a listed drug and removing an unlisted one are invalid.
                valid[row * space + if l.contains(d) { d } else { drugs + d }] = MASKED;
            }
        }
        Self {
            visit: Tensor::from_data(TensorData::new(visit, [n, width]), device),
            visit_mask: Tensor::from_data(TensorData::new(visit_mask, [n, width]), device),
            list: Tensor::from_data(TensorData::new(list, [n, list_width]), device),
            list_mask: Tensor::from_data(TensorData::new(list_mask, [n, list_width]), device),
            valid: Tensor::from_data(TensorData::new(valid, [n, space]), device),
        }
    }
}

fn bag<B: Backend>(table: &Embedding<B>, indices: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, width] = indices.dims();
    let embedded = table.forward(indices); // [batch, width, hidden]
    (embedded * mask.reshape([batch, width, 1]))
        .sum_dim(1)
        .squeeze_dim::<2>(1) // [batch, hidden]
}

impl<B: Backend> ListPolicy<B> {
    /// The masked logits of every action.
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`; invalid actions hold about [`MASKED`]
    pub fn forward(&self, state: StateBatch<B>) -> Tensor<B, 2> {
        let v = bag(&self.visit, state.visit, state.visit_mask); // [batch, hidden]
        let l = bag(&self.list, state.list, state.list_mask); // [batch, hidden]
        let h = self
            .activation
            .forward(self.hidden.forward(Tensor::cat(vec![v, l], 1))); // [batch, hidden]
        self.actions.forward(h) + state.valid // [batch, 2·drugs + 1]
    }
}
