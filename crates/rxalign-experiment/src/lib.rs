//! Experiments in RON files: the schema (version 1), the plugin registry,
//! ablations (grids and named variants, seeds as an axis), the runner that
//! turns one file into run folders, and the comparison of their results.

pub mod ablation;
pub mod catalog;
pub mod compare;
pub mod data;
pub mod error;
pub mod logger;
pub mod plot;
pub mod plugin;
pub mod plugins;
pub mod progress;
pub mod resolve;
pub mod resources;
pub mod runner;
pub mod schema;
pub mod stage;
mod visits;

use std::path::Path;

pub use ablation::{RunPlan, expand};
pub use error::ExperimentError;
pub use plugins::Plugins;
pub use resolve::TypedPlan;
pub use schema::{Experiment, ExperimentFile, SCHEMA_VERSION};

/// Reads, checks and expands an experiment file against `plugins`, and
/// resolves every run into its typed plan before anything trains
/// ([`resolve::resolve`]): what `rxalign run` runs.
pub fn load(path: &Path, plugins: &Plugins) -> Result<(Experiment, Vec<TypedPlan>), ExperimentError> {
    let text = rxalign_core::jsonl::read_text(path)?;
    let schemas = plugins.schemas();
    let exp = schema::parse(path, &text, schemas.clone())?;
    let plans = expand(&exp, schemas)?;
    let typed = resolve::resolve(&exp, &plans, plugins)?;
    Ok((exp, typed))
}
