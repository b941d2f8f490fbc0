//! Dataset sources of rxalign.
//!
//! - [`format`](mod@format): the dataset folder that anyone's data can be put into
//!   (`visits.jsonl`, `drugs.csv`, optional `diagnoses.csv`, `procedures.csv`
//!   and `ddi.csv`), its reader with errors that name file, line and field,
//!   and its writer.
//! - [`synthetic`]: the synthetic clinic, the embedded default dataset: real
//!   conditions, drugs and interactions (as RON in `assets/clinic/`), seeded
//!   multimorbid patients with free-text notes, and the clinician rule that
//!   forms the ground truth.

pub mod error;
pub mod format;
pub mod mimic;
pub mod synthetic;
pub mod time;

pub use error::DataError;
pub use format::{VisitRecord, load_dataset, write_dataset};
pub use synthetic::{SyntheticClinic, SyntheticConfig, World};
