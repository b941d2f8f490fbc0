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
//! `time` (ISO 8601 date or date-time), `age`, `sex` (`"F"` or `"M"`) and
//! `note` are optional; the rest is required, and unknown fields are errors. A
//! patient's visits are ordered by `time` when every one of them has it, and
//! by their order in the file when none has it; a visit's history is the
//! drugs of that patient's earlier visits. Interactions naming drugs outside
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

/// Whether `s` is an ISO 8601 date (`YYYY-MM-DD`) optionally followed by a
/// time (`THH:MM` or `THH:MM:SS`, `T` or a space).
pub fn is_iso_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    if !date {
        return false;
    }
    let month = &s[5..7];
    let day = &s[8..10];
    if !("01"..="12").contains(&month) || !("01"..="31").contains(&day) {
        return false;
    }
    match b.len() {
        10 => true,
        16 | 19 => {
            (b[10] == b'T' || b[10] == b' ')
                && digits(11..13)
                && b[13] == b':'
                && digits(14..16)
                && (b.len() == 16 || (b[16] == b':' && digits(17..19)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        for ok in ["2130-01-31", "2130-01-31T10:00", "2130-01-31 10:00:59"] {
            assert!(is_iso_time(ok), "{ok}");
        }
        for bad in [
            "2130-13-01",
            "31/01/2130",
            "2130-1-1",
            "2130-01-31T10",
            "yesterday",
        ] {
            assert!(!is_iso_time(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod format_tests;
