pub mod baselines;
pub mod data;
pub mod eval;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use rxalign_core::metrics::{MetricInput, MetricReport, evaluate};
use rxalign_core::{Cohort, Split, SplitConfig};
use rxalign_data::{SyntheticClinic, SyntheticConfig, load_dataset};

/// Where the visits come from: a dataset folder, or the embedded synthetic
/// clinic.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// A dataset folder (see `rxalign data --help`); without it, the
    /// embedded synthetic clinic is generated.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Patients of the synthetic clinic (without --data).
    #[arg(long, default_value_t = SyntheticConfig::default().patients)]
    pub patients: usize,
    /// Seed of the synthetic clinic (without --data).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The cohort, and the synthetic clinic when it was generated.
pub fn load(args: &DataArgs) -> anyhow::Result<(Cohort, Option<SyntheticClinic>)> {
    match &args.data {
        Some(dir) => Ok((load_folder(dir)?, None)),
        None => {
            let config = SyntheticConfig {
                patients: args.patients,
                seed: args.seed,
                ..SyntheticConfig::default()
            };
            let clinic = SyntheticClinic::generate(&config).context("generating the synthetic clinic")?;
            Ok((clinic.cohort.clone(), Some(clinic)))
        }
    }
}

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

/// The row name of the ground truth scored against itself.
pub const GROUND_TRUTH: &str = "ground_truth";

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
