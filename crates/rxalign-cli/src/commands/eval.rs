//! `rxalign eval`: score any predictions file.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use rxalign_core::{Predictions, SplitName};

use super::{SplitArgs, load_folder};
use crate::output::{out, outln, warnln};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The dataset folder the predictions are for.
    #[arg(long)]
    data: PathBuf,
    /// JSONL, one visit a line: {"visit_id": ..., "drugs": [codes], "scores": {code: score}}
    /// (scores optional; PRAUC needs them).
    #[arg(long)]
    predictions: PathBuf,
    /// Which visits to score: every visit of the dataset, or those of one
    /// side of the seeded split. The file must predict each of them (see
    /// --allow-partial); its lines for other visits are not scored.
    #[arg(long, default_value = "all")]
    split: SplitName,
    /// Score a file that lacks some visits of the split, over the visits it
    /// has (the coverage is printed beside the metrics). A file that covers
    /// none of them is refused even so.
    #[arg(long)]
    allow_partial: bool,
    #[command(flatten)]
    split_seed: SplitArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &EvalArgs) -> anyhow::Result<()> {
    let cohort = load_folder(&a.data)?;
    let predictions = Predictions::read(&a.predictions, &cohort)?;
    let scope: Vec<usize> = match a.split {
        SplitName::All => (0..cohort.visits.len()).collect(),
        name => a.split_seed.split(&cohort)?.indices(name, cohort.visits.len()),
    };
    let split_words = match a.split {
        SplitName::All => "the dataset".to_string(),
        name => format!("the {name} split ({})", a.split_seed.describe()),
    };
    let coverage = predictions.coverage(&cohort, &scope);
    let file = a.predictions.display();
    let covers = format!(
        "covers {} of the {} visits of {split_words}",
        coverage.predicted, coverage.expected
    );
    if coverage.predicted == 0 {
        bail!("{file} {covers}: nothing to score (is it for another dataset or split?)");
    }
    if !coverage.is_complete() && !a.allow_partial {
        bail!(
            "{file} {covers} ({} missing, for example {}): metrics over a subset are not comparable with full ones; \
             predict every visit, choose the split the file is for (--split), or pass --allow-partial",
            coverage.missing(),
            coverage
                .missing_examples
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let keep: HashSet<usize> = scope.iter().copied().collect();
    let report = predictions.evaluate(&cohort, |i| keep.contains(&i));
    let scope_words = if coverage.is_complete() {
        format!("the {} visits of {split_words}", coverage.expected)
    } else {
        format!("partial, --allow-partial: the file {covers}")
    };
    let ddi_warning = cohort.ddi.warning();
    if a.json {
        let mut json = report.to_json();
        let map = json
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("a metric report is a JSON object"))?;
        map.insert("split".into(), a.split.to_string().into());
        map.insert("scope".into(), scope_words.into());
        map.insert(
            "coverage".into(),
            serde_json::json!({
                "expected": coverage.expected,
                "predicted": coverage.predicted,
                "missing": coverage.missing(),
                "missing_examples": coverage.missing_examples,
                "without_scores": coverage.without_scores,
                "outside_scope": coverage.outside_scope,
                "complete": coverage.is_complete(),
            }),
        );
        map.insert("prauc_note".into(), coverage.prauc_note().into());
        map.insert("ddi_warning".into(), ddi_warning.into());
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        if let Some(w) = &ddi_warning {
            warnln!("warning: {w}");
        }
        outln!("{file} scored against {} ({scope_words})", a.data.display());
        if coverage.outside_scope > 0 {
            outln!(
                "{} line(s) of the file are for visits outside the split and are not scored",
                coverage.outside_scope
            );
        }
        if let Some(note) = coverage.prauc_note() {
            outln!("{note}");
        }
        outln!();
        out!("{}", report.render());
    }
    Ok(())
}
