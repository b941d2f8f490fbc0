use rxalign_core::{Prediction, Predictions};
use rxalign_data::synthetic::REFERENCES;

use super::{RunContext, Stage};
use crate::ExperimentError;

/// Scores the synthetic clinic's references (the ceiling, the notes-and-codes
/// rule and the codes-only rule; the `icu` preset has the ceiling only)
/// beside the other methods.
#[derive(Debug)]
pub struct ReferencesStage;

impl Stage for ReferencesStage {
    fn contract(&self) -> super::Contract {
        // Every reference a preset may record (known before the data is).
        super::Contract {
            records: Some(REFERENCES.iter().map(|(name, _)| name.to_string()).collect()),
            ..super::Contract::default()
        }
    }

    fn kind(&self) -> &str {
        "references"
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<(), ExperimentError> {
        let Some(clinic) = ctx.data.clinic.as_ref() else {
            return Err(ExperimentError::Invalid(
                "the `references` stage needs the synthetic clinic (data kind `synthetic`)".into(),
            ));
        };
        for reference in &clinic.references {
            let predictions = Predictions {
                by_visit: reference
                    .lists
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        (
                            i,
                            Prediction {
                                drugs: l.clone(),
                                scores: None,
                            },
                        )
                    })
                    .collect(),
            };
            ctx.record_method(reference.name, 0, &predictions)?;
        }
        Ok(())
    }
}
