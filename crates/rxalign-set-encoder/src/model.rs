//! The action-head network: the visit (an embedding bag of its codes and
//! previous drugs) and the current list (an embedding bag of its drugs)
//! give the logits of every action; invalid actions are masked.

use burn::module::Param;
use burn::nn::{Linear, Relu};
use burn::prelude::*;
use rxalign_core::{Action, Cohort, DrugSet, Rng};

use rxalign_policy::features::VisitFeatures;

use crate::classifier::{DropoutMasks, multi_hot};
use crate::init::{bag_table, linear};

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
            visit: bag_table(self.features, self.hidden, rng, device),
            list: bag_table(self.drugs + 1, self.hidden, rng, device),
            hidden: linear(2 * self.hidden, self.hidden, rng, device),
            actions: linear(self.hidden, Action::space(self.drugs), rng, device),
            activation: Relu::new(),
        }
    }
}

/// Scores every action of a state.
#[derive(Module, Debug)]
pub struct ListPolicy<B: Backend> {
    /// The visit's embedding bag table: `[features, hidden]`.
    visit: Param<Tensor<B, 2>>,
    /// The list's embedding bag table: `[drugs + 1, hidden]` (the last row
    /// is unused, kept so that checkpoints keep their shape).
    list: Param<Tensor<B, 2>>,
    hidden: Linear<B>,
    actions: Linear<B>,
    activation: Relu,
}

/// A batch of states: visits with their current lists, as multi-hot rows
/// (see [`multi_hot`]). The states of one visit share its row: GRPO's
/// thousands of states come from a few dozen visits, so the visits are
/// encoded once and handed to their states by a one-hot assignment.
///
/// # Shapes
/// - `visits`: `[distinct visits, features]`
/// - `assign`: `[batch, distinct visits]`, 1 at each state's visit
/// - `list`: `[batch, drugs + 1]`, 1 at each listed drug
/// - `valid`: `[batch, 2·drugs + 1]`, 0 for a valid action, [`MASKED`] otherwise
#[derive(Clone, Debug)]
pub struct StateBatch<B: Backend> {
    pub visits: Tensor<B, 2>,
    pub assign: Tensor<B, 2>,
    pub list: Tensor<B, 2>,
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
        let mut distinct: Vec<usize> = Vec::new();
        let mut slot_of = std::collections::HashMap::new();
        let slots: Vec<usize> = states
            .iter()
            .map(|(v, _)| {
                *slot_of.entry(*v).or_insert_with(|| {
                    distinct.push(*v);
                    distinct.len() - 1
                })
            })
            .collect();
        let mut assign = vec![0f32; n * distinct.len()];
        for (row, &slot) in slots.iter().enumerate() {
            assign[row * distinct.len() + slot] = 1.0;
        }
        let mut list = vec![0f32; n * (drugs + 1)];
        let space = Action::space(drugs);
        let mut valid = vec![0f32; n * space];
        for (row, (_, l)) in states.iter().enumerate() {
            // Adding a listed drug and removing an unlisted one are invalid:
            // every removal masked, then each listed drug's add instead.
            let valid = &mut valid[row * space..(row + 1) * space];
            valid[drugs..2 * drugs].fill(MASKED);
            for d in l.iter().take_while(|&d| d < drugs) {
                list[row * (drugs + 1) + d] = 1.0;
                valid[d] = MASKED;
                valid[drugs + d] = 0.0;
            }
        }
        Self {
            assign: Tensor::from_data(TensorData::new(assign, [n, distinct.len()]), device),
            visits: multi_hot(features, cohort, distinct.into_iter(), device),
            list: Tensor::from_data(TensorData::new(list, [n, drugs + 1]), device),
            valid: Tensor::from_data(TensorData::new(valid, [n, space]), device),
        }
    }
}

impl<B: Backend> crate::ActionPolicy<B> for ListPolicy<B> {
    fn logits(&self, state: StateBatch<B>) -> Tensor<B, 2> {
        self.forward(state)
    }
}

impl<B: Backend> ListPolicy<B> {
    /// The masked logits of every action.
    ///
    /// # Shapes
    /// - output: `[batch, 2·drugs + 1]`; invalid actions hold about [`MASKED`]
    pub fn forward(&self, state: StateBatch<B>) -> Tensor<B, 2> {
        self.forward_with(state, None)
    }

    /// [`Self::forward`] with dropout masks while training: `bag` on the
    /// visit's encoding, `hidden` on the hidden layer.
    ///
    /// # Shapes
    /// - masks: `[batch, hidden]`
    /// - output: `[batch, 2·drugs + 1]`
    pub fn forward_with(&self, state: StateBatch<B>, dropout: Option<DropoutMasks<B>>) -> Tensor<B, 2> {
        let encoded = state.visits.matmul(self.visit.val()); // [distinct, hidden]
        let mut v = state.assign.matmul(encoded); // [batch, hidden]
        let (drop_bag, drop_hidden) = dropout.map(|m| (m.bag, m.hidden)).unzip();
        if let Some(m) = drop_bag {
            v = v * m;
        }
        let l = state.list.matmul(self.list.val()); // [batch, hidden]
        let mut h = self
            .activation
            .forward(self.hidden.forward(Tensor::cat(vec![v, l], 1))); // [batch, hidden]
        if let Some(m) = drop_hidden {
            h = h * m;
        }
        self.actions.forward(h) + state.valid // [batch, 2·drugs + 1]
    }
}
