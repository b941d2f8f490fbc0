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
    /// Seed of the split of patients into train, validation and test.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Share of patients in training (default 2/3, as GAMENet and SafeDrug;
    /// the DREAM benchmark: 0.66).
    #[arg(long, default_value_t = 2.0 / 3.0)]
    pub split_train: f64,
    /// Share of patients in validation (default 1/6; DREAM: 0.17); the rest
    /// is test.
    #[arg(long, default_value_t = 1.0 / 6.0)]
    pub split_val: f64,
}

impl SplitArgs {
    pub fn config(&self) -> SplitConfig {
        SplitConfig {
            seed: self.split_seed,
            train: self.split_train,
            val: self.split_val,
        }
    }

    /// The split, its shares checked.
    pub fn split(&self, cohort: &Cohort) -> anyhow::Result<Split> {
        let config = self.config();
        config.validate().context("--split-train, --split-val")?;
        Ok(cohort.split(&config))
    }

    /// Words that say which split definition numbers use.
    pub fn describe(&self) -> String {
        format!(
            "split seed {}: patients {:.4} train, {:.4} val, {:.4} test",
            self.split_seed,
            self.split_train,
            self.split_val,
            1.0 - self.split_train - self.split_val
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

/// Refuses to write into a folder that is not empty, unless `overwrite`
/// (then `what` is written over whatever has its names; nothing else is
/// touched): files already there would be replaced without asking.
pub(crate) fn refuse_non_empty(dir: &Path, overwrite: bool, what: &str) -> anyhow::Result<()> {
    if overwrite || !dir.exists() {
        return Ok(());
    }
    anyhow::ensure!(dir.is_dir(), "{}: exists and is not a folder", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown = if names.len() > 5 {
        format!("{}, ... ({} entries)", names[..5].join(", "), names.len())
    } else {
        names.join(", ")
    };
    anyhow::bail!(
        "{}: the folder is not empty ({shown}); nothing written: choose an empty or new folder, or pass --overwrite to replace {what} in it",
        dir.display()
    )
}

/// Refuses to write a file that exists, unless `overwrite`.
pub(crate) fn refuse_existing(file: &Path, overwrite: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        overwrite || !file.exists(),
        "{}: exists; nothing written: choose another path, or pass --overwrite to replace it",
        file.display()
    );
    Ok(())
}
