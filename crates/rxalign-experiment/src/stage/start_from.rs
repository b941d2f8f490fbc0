use rxalign_core::Predictions;
use rxalign_env::start::PredictionsStart;
use serde::{Deserialize, Serialize};

use super::{Need, RunContext, Stage};
use crate::ExperimentError;

/// Settings of the `start_from` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartFromConfig {
    /// A method recorded by an earlier stage (`classifier`, a baseline).
    pub method: String,
}

/// Makes the later stages start their episodes from an earlier method's
/// lists: FLAME's two stages, where the list policy edits the classifier's
/// output.
#[derive(Debug)]
pub struct StartFromStage(pub StartFromConfig);

impl Stage for StartFromStage {
    fn contract(&self) -> super::Contract {
        super::Contract {
            needs: vec![Need::named::<Predictions>(&self.0.method)],
            records: Some(Vec::new()),
            ..super::Contract::default()
        }
    }

    fn kind(&self) -> &str {
        "start_from"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let predictions = ctx.artifacts.get::<Predictions>(&self.0.method)?;
        ctx.start = std::sync::Arc::new(PredictionsStart::from_predictions(
            predictions.clone(),
            format!("the predictions of `{}`", self.0.method),
        ));
        Ok(())
    }
}
