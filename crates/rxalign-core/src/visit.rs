//! One hospital visit.

use serde::{Deserialize, Serialize};

use crate::DrugSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "M")]
    Male,
}

/// A visit: who, when, what was coded, what the note says, what the patient
/// had been given before and what the clinicians prescribed (the ground
/// truth). Codes are indices into the cohort's vocabularies.
#[derive(Clone, Debug)]
pub struct Visit {
    pub patient_id: String,
    pub visit_id: String,
    /// The date or date-time as the source wrote it (RFC 3339 / ISO 8601;
    /// readers refuse what is not a real date or time). A patient's visits
    /// are ordered by the instant it names, not by this text.
    pub time: Option<String>,
    pub age: Option<f32>,
    pub sex: Option<Sex>,
    /// Diagnosis code indices, in the order given.
    pub diagnoses: Vec<usize>,
    /// Procedure code indices, in the order given.
    pub procedures: Vec<usize>,
    pub note: Option<String>,
    /// The drugs of this patient's earlier visits, oldest first.
    pub history: Vec<DrugSet>,
    /// The prescribed drugs: the ground truth.
    pub drugs: DrugSet,
}

impl Visit {
    /// A visit with only its ids and its prescribed drugs; the other fields
    /// are empty, to be filled as known.
    pub fn new(patient_id: impl Into<String>, visit_id: impl Into<String>, drugs: DrugSet) -> Self {
        Self {
            patient_id: patient_id.into(),
            visit_id: visit_id.into(),
            time: None,
            age: None,
            sex: None,
            diagnoses: Vec::new(),
            procedures: Vec::new(),
            note: None,
            history: Vec::new(),
            drugs,
        }
    }

    /// The previous visit's drugs, if there was one.
    pub fn previous_drugs(&self) -> Option<&DrugSet> {
        self.history.last()
    }
}
