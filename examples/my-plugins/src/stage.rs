//! The stage `start_lists`.

use rxalign_core::{Prediction, Predictions};
use rxalign_experiment::ExperimentError;
use rxalign_experiment::stage::{Contract, RunContext, Stage};
use serde::Deserialize;

/// Scores the run's start lists (the file's `init_list`, or the lists of a
/// `start_from` stage before it) as a method of their own: the point every
/// policy after it edits from.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartListsConfig {
    /// The method name its rows carry.
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_name() -> String {
    "start_list".into()
}

/// The stage of [`StartListsConfig`].
#[derive(Debug)]
pub struct StartListsStage(pub StartListsConfig);

impl Stage for StartListsStage {
    fn kind(&self) -> &str {
        "start_lists"
    }

    fn method(&self) -> &str {
        &self.0.name
    }

    fn contract(&self) -> Contract {
        Contract {
            records: Some(vec![self.0.name.clone()]),
            ..Contract::default()
        }
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let start = std::sync::Arc::clone(&ctx.start);
        let cohort = &ctx.data.cohort;
        let mut by_visit = std::collections::HashMap::new();
        for v in 0..cohort.visits.len() {
            let drugs = start.start(cohort, v, ctx.rng)?;
            by_visit.insert(v, Prediction { drugs, scores: None });
        }
        ctx.record_method(&self.0.name, 0, &Predictions { by_visit })?;
        Ok(())
    }
}
