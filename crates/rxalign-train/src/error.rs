use rxalign_env::EnvError;
use rxalign_policy::PolicyError;

/// Errors of the trainer.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("invalid setting `{field}`: {message}")]
    Config { field: &'static str, message: String },
    /// A loss, a logit or a sampled log-probability that is not a finite
    /// number: the run stops with what to try.
    #[error("{stage} diverged at {unit} {step}: {what} not a finite number; {hint}")]
    Diverged {
        stage: &'static str,
        unit: &'static str,
        step: usize,
        what: String,
        hint: &'static str,
    },
    /// What the observer of a loop (the run's records) failed with.
    #[error(transparent)]
    Observer(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Invalid(String),
}

impl TrainError {
    /// A finite-number failure of the policy during `stage`, as divergence.
    pub(crate) fn diverged_if_non_finite(
        self,
        stage: &'static str,
        unit: &'static str,
        step: usize,
        hint: &'static str,
    ) -> Self {
        match self {
            Self::Policy(PolicyError::NonFinite { what }) => Self::Diverged {
                stage,
                unit,
                step,
                what: format!("the policy's {what} are"),
                hint,
            },
            other => other,
        }
    }
}

/// A check that a setting is positive.
pub(crate) fn positive(field: &'static str, value: f64) -> Result<(), TrainError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Config {
            field,
            message: format!("must be a positive number (found {value})"),
        })
    }
}

/// A check that a count is at least `least`.
pub(crate) fn at_least(field: &'static str, value: usize, least: usize) -> Result<(), TrainError> {
    if value >= least {
        Ok(())
    } else {
        Err(TrainError::Config {
            field,
            message: format!("must be at least {least} (found {value})"),
        })
    }
}

/// A check that a setting is a non-negative number.
pub(crate) fn non_negative(field: &'static str, value: f64) -> Result<(), TrainError> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Config {
            field,
            message: format!("must be a non-negative number (found {value})"),
        })
    }
}

/// A check that a rate lies in [0, 1].
pub(crate) fn rate(field: &'static str, value: f64) -> Result<(), TrainError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(TrainError::Config {
            field,
            message: format!("must lie in [0, 1] (found {value})"),
        })
    }
}
