/// Errors of the policies.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy setting `{field}`: {message}")]
    Config { field: &'static str, message: String },
    #[error("{what} are not finite numbers (the policy diverged)")]
    NonFinite { what: &'static str },
    #[error("{0}")]
    Invalid(String),
}
