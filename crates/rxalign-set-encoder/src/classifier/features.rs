//! Visits as model inputs: multi-hot rows over the feature space of
//! [`VisitFeatures`] (the floor's, `rxalign_policy::features`).

use burn::prelude::*;
use rxalign_core::Cohort;
use rxalign_policy::features::VisitFeatures;

/// Visits as multi-hot rows: each row holds 1 at the visit's feature
/// indices. Multiplying it by a table sums the table's rows at those
/// indices: an embedding bag. (The list policy sums the rows by index
/// instead, [`crate::Bags`]: a visit holds a few dozen of the features,
/// and on `flex` the gathered rows cost less than the product there,
/// measured by `benches/train_throughput.rs`.)
///
/// # Shapes
/// - output: `[visits.len(), features.size()]`
pub fn multi_hot<B: Backend>(
    features: &VisitFeatures,
    cohort: &Cohort,
    visits: impl ExactSizeIterator<Item = usize>,
    device: &B::Device,
) -> Tensor<B, 2> {
    let n = visits.len();
    let size = features.size();
    let mut values = vec![0f32; n * size];
    for (row, v) in visits.enumerate() {
        for f in features.bag(cohort, v) {
            values[row * size + f as usize] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(values, [n, size]), device)
}

/// A batch of visits as tensors.
///
/// # Shapes
/// - `visits`: `[batch, features]`, multi-hot (see [`multi_hot`])
/// - `targets`: `[batch, drugs]`, 1 where the drug was prescribed
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    pub visits: Tensor<B, 2>,
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> Batch<B> {
    pub fn new(features: &VisitFeatures, cohort: &Cohort, visits: &[usize], device: &B::Device) -> Self {
        let n = visits.len();
        let drugs = cohort.drug_count();
        let mut targets = vec![0i64; n * drugs];
        for (row, &v) in visits.iter().enumerate() {
            for d in cohort.visits[v].drugs.iter() {
                targets[row * drugs + d] = 1;
            }
        }
        Self {
            visits: multi_hot(features, cohort, visits.iter().copied(), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, drugs]), device),
        }
    }
}
