use rxalign_core::{Action, CoreError};

/// Errors of the decision process and its plugins.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("invalid action {action:?}: {reason}")]
    InvalidAction { action: Action, reason: &'static str },
    #[error("the episode is over")]
    Finished,
    #[error("start list `{kind}`: {message}")]
    Start { kind: &'static str, message: String },
    #[error("{0}")]
    Config(String),
}
