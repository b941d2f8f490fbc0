//! Comparing the runs of an experiment: final test metrics per group and
//! method, mean and standard deviation over seeds. The readers live in
//! `rxalign_core::run` (no burn), shared with `plot`, `status` and the
//! dashboard; they are re-exported here.

pub use rxalign_core::run::aggregate::{COLUMNS, Cell, Comparison, Format, compare, render_table};
pub use rxalign_core::run::discover::{FinishedRun, finished_runs};
