//! The drug-level classifier.

mod features;
mod model;
mod train;

pub use features::{Batch, multi_hot};
pub use model::{DropoutMasks, DrugClassifier, DrugClassifierConfig};
pub use train::{
    ClassifierSettings, EpochLog, TrainedClassifier, cross_fit, train_classifier, train_classifier_with,
};

#[cfg(test)]
mod tests;
