/// Errors of the policies.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy setting `{field}`: {message}")]
    Config { field: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}
