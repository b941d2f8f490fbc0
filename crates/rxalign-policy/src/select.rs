//! Which of a training loop's models it hands on, as experiment files
//! write it (`select: "last"` or `"validation"`): the `sft` and `grpo`
//! stages' loops (`rxalign-train`) and the `lamo` stage's groups.

use serde::{Deserialize, Serialize};

/// Which model a loop hands on; written as a string in experiment files
/// (`"last"`, `"validation"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum Select {
    /// The model after the last epoch or iteration.
    #[default]
    Last,
    /// The model best on the validation patients (earliest on ties). SFT
    /// and GRPO: the evaluated step with the best mean outcome reward
    /// (GRPO's candidates include its start, step 0, the SFT policy);
    /// LAMO: each group's adapter of its epoch with the lowest validation
    /// cross-entropy.
    Validation,
}

impl TryFrom<String> for Select {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "last" => Ok(Self::Last),
            "validation" => Ok(Self::Validation),
            other => Err(format!("unknown selection `{other}`; known: last, validation")),
        }
    }
}

impl From<Select> for String {
    fn from(s: Select) -> String {
        match s {
            Select::Last => "last",
            Select::Validation => "validation",
        }
        .to_string()
    }
}
