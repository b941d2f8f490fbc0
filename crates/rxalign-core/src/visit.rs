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
    /// ISO 8601 date or date-time; orders a patient's visits.
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
