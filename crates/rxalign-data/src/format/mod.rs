//! The dataset folder: the one format every source writes and every part of
//! rxalign reads.
//!
//! ```text
//! DIR/
//!   visits.jsonl     one visit per line (below)
//!   drugs.csv        code,name            every drug a visit may name
//!   diagnoses.csv    code,name            optional; when present, visits may only use its codes
//!   procedures.csv   code,name            optional; likewise
//!   ddi.csv          code_a,code_b        optional; symmetric interacting pairs
//! ```
//!
//! A line of `visits.jsonl`:
//!
//! ```json
//! {"patient_id": "P1", "visit_id": "P1-V1", "time": "2130-04-02", "age": 67, "sex": "F",
//!  "diagnoses": ["4019", "486"], "procedures": ["8744"], "note": "free text",
//!  "drugs": ["C09AA03", "J01DD04"]}
//! ```
//!
//! `time` (a date or date-time, see [`crate::time`]: RFC 3339 and ISO 8601
//! spellings, refused unless it is a real date and time), `age`, `sex` (`"F"` or `"M"`) and
//! `note` are optional; the rest is required, and unknown fields are errors. A
//! patient's visits are ordered by `time` when every one of them has it, and
//! by their order in the file when none has it; a visit's history is the
//! drugs of that patient's earlier visits, ordered by the instant each
//! time names (not by its spelling; a patient's times either all give an
//! offset or none does). Interactions naming drugs outside
//! `drugs.csv` are left out and counted (see [`rxalign_core::DdiSource`]).

mod read;
mod write;

use serde::{Deserialize, Serialize};

pub use read::load_dataset;
pub use write::write_dataset;

use rxalign_core::Sex;

pub const VISITS: &str = "visits.jsonl";
pub const DRUGS: &str = "drugs.csv";
pub const DIAGNOSES: &str = "diagnoses.csv";
pub const PROCEDURES: &str = "procedures.csv";
pub const DDI: &str = "ddi.csv";

/// One line of `visits.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitRecord {
    pub patient_id: String,
    pub visit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    pub diagnoses: Vec<String>,
    pub procedures: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub drugs: Vec<String>,
}

#[cfg(test)]
mod format_tests;
