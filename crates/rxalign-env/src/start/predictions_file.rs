use std::path::PathBuf;

use rxalign_core::{Cohort, DrugSet, Predictions, Rng};
use serde::{Deserialize, Serialize};

use super::StartList;
use crate::EnvError;

/// A predictions file to start from (for example a classifier's output,
/// FLAME's first stage, or any model trained elsewhere).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionsStartConfig {
    /// The predictions file (JSONL, as `rxalign eval` reads), relative to
    /// the directory rxalign runs in.
    pub path: PathBuf,
}

impl PredictionsStartConfig {
    /// Reads and resolves the file; errors name its line.
    pub fn init(&self, cohort: &Cohort) -> Result<PredictionsStart, EnvError> {
        Ok(PredictionsStart {
            path: self.path.clone(),
            predictions: Predictions::read(&self.path, cohort)?,
        })
    }
}

/// Each visit starts from its list in a predictions file.
#[derive(Clone, Debug)]
pub struct PredictionsStart {
    path: PathBuf,
    predictions: Predictions,
}

impl PredictionsStart {
    /// Starts from predictions made in this process (another method's
    /// output); `origin` names them in errors.
    pub fn from_predictions(predictions: Predictions, origin: impl Into<PathBuf>) -> Self {
        Self {
            path: origin.into(),
            predictions,
        }
    }
}

impl StartList for PredictionsStart {
    fn name(&self) -> &str {
        "predictions"
    }

    fn start(&self, cohort: &Cohort, visit: usize, _rng: &mut Rng) -> Result<DrugSet, EnvError> {
        self.predictions
            .by_visit
            .get(&visit)
            .map(|p| p.drugs.clone())
            .ok_or_else(|| EnvError::Start {
                kind: "predictions",
                message: format!(
                    "visit `{}` is not in {}",
                    cohort.visits[visit].visit_id,
                    self.path.display()
                ),
            })
    }
}
