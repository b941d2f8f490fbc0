//! The errors of this crate.

use std::path::PathBuf;

/// Everything that can go wrong loading, running or saving a language model.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (config.json, an index, an adapter config) that does not parse;
    /// the message names the field, line and column.
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    /// A well-formed file whose content we cannot use.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("loading weights from {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("saving {path}: {message}")]
    Save { path: PathBuf, message: String },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("no LoRA adapter named `{name}`; the model has: {known}")]
    UnknownAdapter { name: String, known: String },
    #[error("a LoRA adapter named `{0}` exists already")]
    DuplicateAdapter(String),
    #[error("LoRA target `{target}` is not a projection; known: {known}")]
    UnknownTarget { target: String, known: String },
    /// Every token's score is NaN or infinite: the model diverged.
    #[error("{what} are not finite numbers (the model diverged)")]
    NonFinite { what: &'static str },
    #[error("invalid request: {0}")]
    Request(String),
}

pub type Result<T, E = LmError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LmError {
    let path = path.into();
    move |source| LmError::Io { path, source }
}

/// Parses JSON from a file with the failing field's path, line and column.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| LmError::Json {
        path: path.to_path_buf(),
        // serde_json's message ends with the line and column.
        message: format!("field `{}`: {}", e.path(), e.inner()),
    })
}
