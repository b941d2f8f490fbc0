use std::path::PathBuf;

use rxalign_core::CoreError;

/// Errors of the dataset sources. Input errors name the file, the line and
/// the field.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("{path}:{line}:{column}: {message}")]
    Ron {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    World { path: PathBuf, message: String },
    #[error("invalid synthetic clinic setting `{field}`: {message}")]
    Config { field: &'static str, message: String },
}
