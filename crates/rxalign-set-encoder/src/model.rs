//! The action-head network: the visit (an embedding bag of its codes and
//! previous drugs) and the current list (an embedding bag of its drugs)
//! give the logits of every action; invalid actions are masked.

use burn::module::Param;
use burn::nn::{Linear, Relu};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use rxalign_core::{Action, Cohort, DrugSet, Rng};

use rxalign_policy::features::VisitFeatures;

use crate::classifier::DropoutMasks;
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

/// Bags of table rows: each bag is the sum of its members' rows of a table
/// (an embedding bag). The rows are gathered and summed into their bags by
/// index (`select`, then `select_assign` with `Add`), so the work and the
/// gradient's follow the members, not the table's size: a visit has a few
/// dozen of the table's thousand or more features.
///
/// # Shapes
/// - `members`: `([members], [members])`, each member's table row and its
///   bag; `None` when every bag is empty
#[derive(Clone, Debug)]
pub struct Bags<B: Backend> {
    pub members: Option<(Tensor<B, 1, Int>, Tensor<B, 1, Int>)>,
    /// The number of bags.
    pub bags: usize,
}

impl<B: Backend> Bags<B> {
    /// Bags from each bag's table rows (a row named twice in one bag counts
    /// once: a bag is a set of rows).
    pub fn new<I: IntoIterator<Item = usize>>(
        bags: impl ExactSizeIterator<Item = I>,
        device: &B::Device,
    ) -> Self {
        let count = bags.len();
        let (mut rows, mut of) = (Vec::new(), Vec::new());
        for (bag, members) in bags.enumerate() {
            let first = rows.len();
            rows.extend(members.into_iter().map(|r| r as i64));
            rows[first..].sort_unstable();
            let mut kept = first;
            for k in first..rows.len() {
                if k == first || rows[k] != rows[kept - 1] {
                    rows[kept] = rows[k];
                    kept += 1;
                }
            }
            rows.truncate(kept);
            of.resize(kept, bag as i64);
        }
        let n = rows.len();
        let index = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [n]), device);
        Self {
            members: (n > 0).then(|| (index(rows), index(of))),
            bags: count,
        }
    }

    /// The sum of each bag's rows of `table`.
    ///
    /// # Shapes
    /// - `table`: `[rows, width]`
    /// - output: `[bags, width]`
    pub fn sum(&self, table: Tensor<B, 2>) -> Tensor<B, 2> {
        let [_, width] = table.dims();
        let sums = Tensor::zeros([self.bags, width], &table.device());
        match &self.members {
            Some((rows, of)) => sums.select_assign(
                0,
                of.clone(),
                table.select(0, rows.clone()), // [members, width]
                IndexingUpdateOp::Add,
            ),
            None => sums,
        }
    }
}

/// A batch of states: visits as bags of their features (see [`Bags`]) and
/// their current lists as multi-hot rows. The states of one visit share
/// its encoding: GRPO's thousands of states come from a few dozen visits,
/// so the visits are encoded once and handed to their states by index.
///
/// # Shapes
/// - `visits`: bags over the visit features, one per distinct visit
/// - `assign`: `[batch]`, each state's distinct visit
/// - `list`: `[batch, drugs + 1]`, 1 at each listed drug (a list holds a
///   tenth of the drugs or more, where one matrix product with the table
///   is faster than gathering its rows)
/// - `valid`: `[batch, 2·drugs + 1]`, 0 for a valid action, [`MASKED`] otherwise
#[derive(Clone, Debug)]
pub struct StateBatch<B: Backend> {
    pub visits: Bags<B>,
    pub assign: Tensor<B, 1, Int>,
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
        let slots: Vec<i64> = states
            .iter()
            .map(|(v, _)| {
                *slot_of.entry(*v).or_insert_with(|| {
                    distinct.push(*v);
                    distinct.len() as i64 - 1
                })
            })
            .collect();
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
            visits: Bags::new(
                distinct
                    .iter()
                    .map(|&v| features.bag(cohort, v).into_iter().map(|f| f as usize)),
                device,
            ),
            assign: Tensor::from_data(TensorData::new(slots, [n]), device),
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
        let encoded = state.visits.sum(self.visit.val()); // [distinct, hidden]
        let mut v = encoded.select(0, state.assign); // [batch, hidden]
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
