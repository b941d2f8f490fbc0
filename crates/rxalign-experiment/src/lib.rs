//! Experiments in RON files: the schema (version 1), the plugin registry,
//! ablations (grids and named variants, seeds as an axis), the runner that
//! turns one file into run folders, and the comparison of their results.

pub mod ablation;
pub mod compare;
pub mod data;
pub mod error;
pub mod logger;
pub mod plot;
pub mod plugin;
pub mod plugins;
pub mod progress;
pub mod runner;
pub mod schema;
pub mod stage;

use std::path::Path;

pub use ablation::{RunPlan, expand};
pub use error::ExperimentError;
pub use plugins::Plugins;
pub use schema::{Experiment, ExperimentFile, SCHEMA_VERSION};

/// Reads, checks and expands an experiment file against `plugins`.
pub fn load(path: &Path, plugins: &Plugins) -> Result<(Experiment, Vec<RunPlan>), ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| rxalign_core::CoreError::io(path, e))?;
    let schemas = plugins.schemas();
    let exp = schema::parse(path, &text, schemas.clone())?;
    let plans = expand(&exp, schemas)?;
    Ok((exp, plans))
}
