//! `rxalign baseline`: one baseline's predictions file.

use std::path::PathBuf;

use clap::Args;
use rxalign_core::{Predictions, SplitName};
use rxalign_env::baseline;
use serde_json::Value;

use super::{SplitArgs, load_folder};
use crate::output::outln;

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Which baseline: most_frequent, cooccurrence or everything_indicated.
    kind: String,
    /// The dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the predictions (JSONL): a new file.
    #[arg(long)]
    out: PathBuf,
    /// Replace the file at --out if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Which visits to predict (the baseline always fits on the train split).
    #[arg(long, default_value = "all")]
    split: SplitName,
    #[command(flatten)]
    split_seed: SplitArgs,
}

pub fn run_one(a: &BaselineArgs) -> anyhow::Result<()> {
    super::refuse_existing(&a.out, a.overwrite)?;
    let cohort = load_folder(&a.data)?;
    let split = a.split_seed.split(&cohort)?;
    let mut r = baseline::registry().build(&a.kind, &Value::Null, &())?;
    r.fit(&cohort, &split.train);
    let visits = split.indices(a.split, cohort.visits.len());
    let records = baseline::records(r.as_ref(), &cohort, &visits);
    Predictions::write(&a.out, &records)?;
    outln!(
        "wrote {} predictions of {} (fit on {} train visits; {}) to {}",
        records.len(),
        a.kind,
        split.train.len(),
        a.split_seed.describe(),
        a.out.display()
    );
    Ok(())
}
