//! The drug-level classifier.

mod features;
mod model;
mod train;

pub use features::{Batch, multi_hot};
pub use model::{DropoutMasks, DrugClassifier, DrugClassifierConfig};
pub use train::{
    ClassifierOptim, ClassifierRngs, ClassifierSettings, ClassifierTraining, Fold, TrainedClassifier,
    cross_fit_folds,
};

#[cfg(test)]
mod tests;
