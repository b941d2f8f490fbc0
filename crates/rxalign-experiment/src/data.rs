//! Dataset sources: where a run's visits come from.

use std::fmt;
use std::path::PathBuf;

use rxalign_core::Cohort;
use rxalign_data::{SyntheticClinic, SyntheticConfig};

use crate::ExperimentError;

/// A run's data: the cohort, and the synthetic clinic when it was generated
/// (its references need it).
#[derive(Debug)]
pub struct LoadedData {
    pub cohort: Cohort,
    pub clinic: Option<SyntheticClinic>,
}

/// A dataset source plugin.
pub trait DataSource: Send + Sync + fmt::Debug {
    fn load(&self) -> Result<LoadedData, ExperimentError>;
}

/// The embedded synthetic clinic, generated with the given knobs.
#[derive(Debug)]
pub struct SyntheticSource(pub SyntheticConfig);

impl DataSource for SyntheticSource {
    fn load(&self) -> Result<LoadedData, ExperimentError> {
        let clinic = SyntheticClinic::generate(&self.0)?;
        Ok(LoadedData {
            cohort: clinic.cohort.clone(),
            clinic: Some(clinic),
        })
    }
}

/// A dataset folder (see `rxalign data --help`), relative to the working
/// directory.
#[derive(Debug)]
pub struct FolderSource(pub PathBuf);

impl DataSource for FolderSource {
    fn load(&self) -> Result<LoadedData, ExperimentError> {
        Ok(LoadedData {
            cohort: rxalign_data::load_dataset(&self.0)?,
            clinic: None,
        })
    }
}
