pub mod baselines;
pub mod dashboard;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod lm;
pub mod plugins;

use std::path::Path;

use anyhow::Context as _;
use clap::Args;
use rxalign_core::metrics::{MetricInput, MetricReport, evaluate};
use rxalign_core::{Cohort, Split, SplitConfig};
use rxalign_data::load_dataset;

pub fn load_folder(dir: &Path) -> anyhow::Result<Cohort> {
    load_dataset(dir).with_context(|| format!("loading the dataset {}", dir.display()))
}

/// The split shared by every command: by patient, seeded.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Seed of the split of patients into train, validation and test
    /// (2/3, 1/6, 1/6, as GAMENet and SafeDrug).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
}

impl SplitArgs {
    pub fn config(&self) -> SplitConfig {
        SplitConfig::with_seed(self.split_seed)
    }

    pub fn split(&self, cohort: &Cohort) -> Split {
        cohort.split(&self.config())
    }

    /// Words that say which split definition numbers use.
    pub fn describe(&self) -> String {
        format!(
            "split seed {}: patients 2/3 train, 1/6 val, 1/6 test",
            self.split_seed
        )
    }
}

/// The row name of the ground truth scored against itself, as run folders
/// name it.
pub use rxalign_experiment::runner::GROUND_TRUTH;

/// The ground truth scored against itself over some visits: its list sizes
/// and DDI rates, the yardstick of every other row.
pub fn truth_report(cohort: &Cohort, visits: &[usize]) -> MetricReport {
    evaluate(visits.iter().map(|&i| {
        let v = &cohort.visits[i];
        MetricInput {
            predicted: &v.drugs,
            truth: &v.drugs,
            scores: None,
            ddi: &cohort.ddi,
        }
    }))
}
