use std::path::PathBuf;

use rxalign_core::CoreError;
use rxalign_data::DataError;
use rxalign_env::EnvError;

/// Errors of experiment files and runs. Errors in a file name its path, the
/// line and the column.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{path}:{line}:{column}: {message}")]
    File {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: schema_version {found} is newer than this rxalign reads ({supported}); update rxalign")]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("run `{run}`: {message}")]
    Run { run: String, message: String },
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Train(#[from] rxalign_train::TrainError),
    #[error(transparent)]
    Policy(#[from] rxalign_policy::PolicyError),
    /// Several problems, each on its own line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ExperimentError>),
    #[error("{0}")]
    Invalid(String),
}
