use std::path::PathBuf;

/// Errors of the core crate. Input errors name the file, the line (1-based)
/// and the field, so that a researcher can fix the input without guessing.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The OS error is part of the message and deliberately not a
    /// `source`: reporters that print the chain (`{:#}`) would print it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}:{line}: field `{field}`: {message}")]
    Input {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("drug set width mismatch: {left} bits against {right} bits")]
    WidthMismatch { left: usize, right: usize },
    #[error("{0}")]
    Invalid(String),
}

impl CoreError {
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }

    pub fn input(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Input {
            path: path.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            message: message.into(),
        }
    }
}
