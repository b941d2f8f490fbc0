//! `rxalign eval`: score any predictions file.

use std::collections::HashSet;
use std::path::PathBuf;

use clap::Args;
use rxalign_core::{Predictions, SplitName};

use super::{SplitArgs, load_folder};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The dataset folder the predictions are for.
    #[arg(long)]
    data: PathBuf,
    /// JSONL, one visit a line: {"visit_id": ..., "drugs": [codes], "scores": {code: score}}
    /// (scores optional; PRAUC needs them).
    #[arg(long)]
    predictions: PathBuf,
    /// Which visits of the file to score: all of them, or those of one
    /// side of the seeded split.
    #[arg(long, default_value = "all")]
    split: SplitName,
    #[command(flatten)]
    split_seed: SplitArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &EvalArgs) -> anyhow::Result<()> {
    let cohort = load_folder(&a.data)?;
    let predictions = Predictions::read(&a.predictions, &cohort)?;
    let keep: Option<HashSet<usize>> = match a.split {
        SplitName::All => None,
        name => Some(
            a.split_seed
                .split(&cohort)
                .indices(name, cohort.visits.len())
                .into_iter()
                .collect(),
        ),
    };
    let report = predictions.evaluate(&cohort, |i| keep.as_ref().is_none_or(|k| k.contains(&i)));
    let scope = match a.split {
        SplitName::All => "every visit in the file".to_string(),
        name => format!(
            "visits of the file in the {name} split ({})",
            a.split_seed.describe()
        ),
    };
    if a.json {
        let mut json = report.to_json();
        let map = json.as_object_mut().expect("a report is an object");
        map.insert("split".into(), a.split.to_string().into());
        map.insert("scope".into(), scope.into());
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "{} scored against {} ({scope})\n",
            a.predictions.display(),
            a.data.display()
        );
        print!("{}", report.render());
    }
    Ok(())
}
