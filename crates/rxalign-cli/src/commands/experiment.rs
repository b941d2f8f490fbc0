//! `rxalign plan`, `rxalign run` and `rxalign compare`.

use std::path::PathBuf;

use crate::output::{out, outln, warnln};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rxalign_experiment::compare::{Format, compare, finished_runs};
use rxalign_experiment::runner::{Outcome, experiment_dir, run_all};
use rxalign_experiment::{Plugins, load};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The experiment file (RON).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (RON).
    file: PathBuf,
    /// Run only this variant (or group, or run name).
    #[arg(long)]
    only: Option<String>,
    /// Runs at a time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Folder of experiments; the runs go to OUT/<experiment name>/<run>.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Markdown,
    Csv,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The folder of an experiment's runs (runs/<experiment name>).
    dir: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
}

pub fn plan(a: &PlanArgs) -> anyhow::Result<()> {
    let (exp, plans) = load(&a.file, &Plugins::builtin())?;
    outln!(
        "{}: {} run(s) of experiment `{}`",
        a.file.display(),
        plans.len(),
        exp.file.name
    );
    for p in &plans {
        let overrides: Vec<String> = p
            .overrides
            .iter()
            .map(|(k, v)| format!("{k} = {}", ron::to_string(v).unwrap_or_default()))
            .collect();
        outln!(
            "  {}  (group {}, seed {}){}",
            p.name,
            p.group,
            p.seed,
            if overrides.is_empty() {
                String::new()
            } else {
                format!(": {}", overrides.join(", "))
            }
        );
    }
    Ok(())
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let plugins = Plugins::builtin();
    let (exp, mut plans) = load(&a.file, &plugins)?;
    if let Some(only) = &a.only {
        plans.retain(|p| {
            &p.group == only || &p.name == only || p.group.split(',').next() == Some(only.as_str())
        });
        anyhow::ensure!(
            !plans.is_empty(),
            "no run of {} matches --only {only}",
            a.file.display()
        );
    }
    let dir = experiment_dir(&a.out, &exp.file.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    outln!("{}: {} run(s) into {}", exp.file.name, plans.len(), dir.display());
    let outcomes = run_all(&plans, &plugins, &dir, a.jobs, &|plan, outcome| match outcome {
        Outcome::Finished { seconds } => outln!("  finished {} in {seconds:.1} s", plan.name),
        Outcome::AlreadyFinished => outln!("  {} already finished; not run again", plan.name),
        Outcome::Failed(e) => warnln!("  FAILED {}: {e}", plan.name),
    });
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    let (runs, _) = finished_runs(&dir)?;
    outln!("\nfinal test metrics (mean ± std over seeds; definitions: `rxalign eval --help`, README):\n");
    out!("{}", compare(&runs).render(Format::Text));
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} run(s) failed; the others are intact",
        plans.len()
    );
    Ok(())
}

pub fn compare_runs(a: &CompareArgs) -> anyhow::Result<()> {
    let (runs, unfinished) = finished_runs(&a.dir)?;
    anyhow::ensure!(!runs.is_empty(), "no finished run under {}", a.dir.display());
    let format = match a.format {
        FormatArg::Text => Format::Text,
        FormatArg::Markdown => Format::Markdown,
        FormatArg::Csv => Format::Csv,
    };
    out!("{}", compare(&runs).render(format));
    if unfinished > 0 {
        warnln!("({unfinished} unfinished run(s) left out)");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The folder of an experiment's runs (runs/<experiment name>).
    dir: PathBuf,
    /// Where to write the figures (PNG and SVG).
    #[arg(long)]
    out: PathBuf,
}

pub fn plot(a: &PlotArgs) -> anyhow::Result<()> {
    let files = rxalign_experiment::plot::plot_experiment(&a.dir, &a.out)?;
    for f in files {
        outln!("wrote {}", f.display());
    }
    Ok(())
}
