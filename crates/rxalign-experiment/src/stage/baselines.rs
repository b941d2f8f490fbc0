use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{RunContext, Stage};
use crate::ExperimentError;

/// Settings of the `baselines` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselinesConfig {
    /// The non-learned recommenders to fit and score, by kind.
    #[serde(default = "all")]
    pub methods: Vec<String>,
}

fn all() -> Vec<String> {
    rxalign_env::baseline::BUILTIN
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Fits each non-learned recommender on the training visits and scores it.
#[derive(Debug)]
pub struct BaselinesStage {
    config: BaselinesConfig,
}

impl BaselinesStage {
    pub fn new(config: BaselinesConfig) -> Self {
        Self { config }
    }
}

impl Stage for BaselinesStage {
    fn contract(&self) -> super::Contract {
        super::Contract {
            records: Some(self.config.methods.clone()),
            ..super::Contract::default()
        }
    }

    fn kind(&self) -> &str {
        "baselines"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let registry = rxalign_env::baseline::registry();
        let data = ctx.data;
        let cohort = &data.cohort;
        let visits: Vec<usize> = (0..cohort.visits.len()).collect();
        for method in &self.config.methods {
            let mut r = registry.build(method, &Value::Null, &())?;
            r.fit(cohort, &ctx.split.train);
            let predictions = rxalign_env::baseline::predict(r.as_ref(), cohort, &visits);
            ctx.record_method(method, 0, &predictions)?;
        }
        Ok(())
    }
}
