//! `rxalign plan`, `rxalign run`, `rxalign status`, `rxalign compare` and
//! `rxalign plot`.

use std::path::{Path, PathBuf};

use crate::output::{out, outln, warnln};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rxalign_core::run::aggregate::{Format, Mean, compare, compare_with, no_ddi_graph_note, render_table};
use rxalign_core::run::{RunEntry, RunState, experiments, finished_runs};
use rxalign_experiment::progress::TerminalReporter;
use rxalign_experiment::runner::{Outcome, RunOptions, claim_plan, experiment_dir, run_all};
use rxalign_experiment::{Plugins, RunPlan, TypedPlan, load};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Emit {
    /// A Slurm job-array script: one array task per planned run.
    Slurm,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The experiment file (RON).
    file: PathBuf,
    /// Instead of the list, print a cluster script that runs each planned
    /// run as one task (`rxalign run FILE --only RUN`), all into one runs
    /// folder.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// With --emit: the runs folder the tasks write into (shared by them).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// With --emit: the rxalign binary the tasks call (default: this
    /// command's own name, `rxalign` or a plugin crate's binary, which
    /// knows the file's kinds).
    #[arg(long)]
    rxalign: Option<String>,
    /// After the list, what each training stage needs before it runs, per
    /// group: parameters, bytes of weights, gradients, Adam's state, the
    /// KL reference, activations and key/value caches (f32), FLOPs per
    /// step, and the common GPUs it fits (definitions in
    /// docs/language-models.md, "Resources before the run").
    #[arg(long)]
    resources: bool,
    /// With --resources: the prompt's length in tokens that a language
    /// model's estimate assumes (system, patient, start list, question).
    /// Default: measured, the longest first prompt of the data's visits
    /// (each with its own drugs as the start list), which loads the data
    /// and the tokenizer.
    #[arg(long)]
    prompt_tokens: Option<usize>,
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
    /// Replace finished runs whose settings or data changed (refused
    /// otherwise, naming what changed).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Markdown,
    Csv,
    /// JSON for scripts, in a documented format (`rxalign_cli::report`,
    /// `docs/compare.schema.json`, `docs/status.schema.json`).
    Json,
}

impl FormatArg {
    /// The table format; `None` for JSON.
    fn format(self) -> Option<Format> {
        match self {
            Self::Text => Some(Format::Text),
            Self::Markdown => Some(Format::Markdown),
            Self::Csv => Some(Format::Csv),
            Self::Json => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The folder of an experiment's runs (runs/<experiment name>).
    dir: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Which mean of each run's test visits: `per-visit` (every visit
    /// weighs the same; the papers' convention) or `per-patient` (each
    /// patient's visits averaged first, then patients; columns named
    /// `per_patient/<metric>`). Not with `--format json`, which has the
    /// per-visit means.
    #[arg(long, value_enum, default_value = "per-visit")]
    mean: MeanArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MeanArg {
    PerVisit,
    PerPatient,
}

impl From<MeanArg> for Mean {
    fn from(m: MeanArg) -> Self {
        match m {
            MeanArg::PerVisit => Mean::PerVisit,
            MeanArg::PerPatient => Mean::PerPatient,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A runs folder (every experiment in it) or one experiment's folder.
    #[arg(default_value = "runs")]
    dir: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// JSON for scripts (the same as `--format json`).
    #[arg(long)]
    json: bool,
}

fn overrides_text(p: &RunPlan) -> String {
    p.overrides
        .iter()
        .map(|(k, v)| format!("{k} = {}", ron::to_string(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn plan(a: &PlanArgs, plugins: &Plugins) -> anyhow::Result<()> {
    let (exp, plans) = load(&a.file, plugins)?;
    if let Some(Emit::Slurm) = a.emit {
        out!(
            "{}",
            slurm_script(
                &a.file,
                &exp.file.name,
                &plans,
                &a.out,
                &a.rxalign.clone().unwrap_or_else(own_name)
            )
        );
        return Ok(());
    }
    outln!(
        "{}: {} run(s) of experiment `{}`",
        a.file.display(),
        plans.len(),
        exp.file.name
    );
    for p in plans.iter().map(|t| &t.plan) {
        let overrides = overrides_text(p);
        outln!(
            "  {}  (group {}, seed {}){}",
            p.name,
            p.group,
            p.seed,
            if overrides.is_empty() {
                String::new()
            } else {
                format!(": {overrides}")
            }
        );
    }
    describe_splits(&plans);
    if a.resources {
        print_resources(&plans, a.prompt_tokens)?;
    }
    Ok(())
}

/// Each split of the plan once, with its patient lists' fingerprint and
/// each part's diagnostics; a warning for each part where one patient
/// holds more than a tenth of the visits. A dataset that cannot be loaded
/// here (a cluster's login node without the data) is said, not an error.
fn describe_splits(plans: &[TypedPlan]) {
    let splits = match rxalign_experiment::runner::planned_splits(plans) {
        Ok(s) => s,
        Err(e) => {
            warnln!("(the splits are not described: the data could not be loaded here: {e})");
            return;
        }
    };
    outln!(
        "\nsplits by patient ({} distinct; fingerprint: SHA-256 of each part's sorted patient ids, recorded in each run's run.json):",
        splits.len()
    );
    for split in &splits {
        let r = &split.record;
        let runs = if split.runs.len() == plans.len() {
            "every run".to_string()
        } else {
            split.runs.join(", ")
        };
        outln!(
            "  seed {}, shares train {:.4} / val {:.4} / test {:.4}: fingerprint {} ({runs})",
            r.seed,
            r.train,
            r.val,
            1.0 - r.train - r.val,
            r.short_fingerprint()
        );
        for part in &r.parts {
            outln!("    {}", part.describe());
        }
    }
    for split in &splits {
        for warning in split.record.warnings() {
            warnln!("warning: {warning}");
        }
    }
}

/// `--resources`: the estimate of the first run of each group (seeds
/// change no size).
fn print_resources(plans: &[TypedPlan], prompt_tokens: Option<usize>) -> anyhow::Result<()> {
    use rxalign_experiment::resources::{CARD_SHARE, FLOAT_BYTES, human_bytes};
    let mut seen = std::collections::BTreeSet::new();
    let prompts = match prompt_tokens {
        Some(n) => format!("{n} tokens (--prompt-tokens)"),
        None => "the data's longest (measured)".into(),
    };
    outln!(
        "\nResources (f32, {FLOAT_BYTES} bytes a value, unless a stage names its weight matrices' precision; a language model's prompts: {prompts}):"
    );
    for t in plans {
        if !seen.insert(t.plan.group.clone()) {
            continue;
        }
        outln!("group {}:", t.plan.group);
        for s in rxalign_experiment::resources::estimate(t, prompt_tokens)? {
            let f = match s.footprint {
                Ok(f) => f,
                Err(why) => {
                    outln!("  {}: {why}", s.stage);
                    continue;
                }
            };
            let b = |x: u128| human_bytes(x);
            outln!("  {}: {}", s.stage, f.shape);
            outln!(
                "    parameters {} ({} trainable)",
                thousands(f.parameters),
                thousands(f.trainable)
            );
            outln!(
                "    weights {}, gradients {}, Adam state {}, KL reference {}",
                b(f.weight_bytes),
                b(f.gradient_bytes),
                b(f.optimizer_bytes),
                b(f.reference_bytes)
            );
            outln!(
                "    activations {}, rollout KV caches {}",
                b(f.activation_bytes),
                b(f.kv_cache_bytes)
            );
            outln!(
                "    peak {} (state + the larger of activations and caches); {:.3e} FLOPs {}",
                b(f.peak_bytes()),
                f.flops,
                if s.stage.starts_with("sft") {
                    "a step"
                } else {
                    "an iteration"
                }
            );
            let fits: Vec<String> = f
                .fits()
                .into_iter()
                .map(|(card, ok)| format!("{card} {}", if ok { "yes" } else { "no" }))
                .collect();
            outln!(
                "    fits (peak <= {:.0}% of the card): {}",
                CARD_SHARE * 100.0,
                fits.join(", ")
            );
        }
    }
    Ok(())
}

/// `8,030,261,248`.
fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The name this command was called by (`rxalign`, `my-rxalign`), without
/// its folder: the tasks of a cluster script find it on their `PATH`.
fn own_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rxalign".into())
}

/// A word for a POSIX shell, single-quoted.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A Slurm job-array script: task `i` runs the `i`-th planned run.
fn slurm_script(file: &Path, name: &str, plans: &[TypedPlan], out: &Path, rxalign: &str) -> String {
    let dir = experiment_dir(out, name);
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=rxalign-{name}\n"));
    s.push_str(&format!("#SBATCH --array=0-{}\n", plans.len().saturating_sub(1)));
    s.push_str(&format!("#SBATCH --output={}/slurm-%A_%a.log\n", dir.display()));
    s.push_str("#SBATCH --cpus-per-task=2\n#SBATCH --time=04:00:00\n");
    s.push_str(&format!(
        "# Written by `rxalign plan {} --emit slurm`: one array task per planned run of\n\
         # experiment `{name}`, all writing into {} (a folder every node sees).\n\
         # Set the partition, time, CPUs and GPUs (`device: \"cuda:0\"` with --gres=gpu:1)\n\
         # for your cluster. Before submitting: mkdir -p {}\n\
         # Submit from the folder the file's relative paths start at: sbatch this-script.sh\n\
         # Each run has one writer (run.lock); finished runs are kept and interrupted ones\n\
         # resume, so resubmitting the array (or some of its tasks, --array=3,7) is safe.\n\
         # Follow it with `rxalign status {}`, then `rxalign compare {}`.\n",
        file.display(),
        dir.display(),
        dir.display(),
        out.display(),
        dir.display()
    ));
    s.push_str("set -euo pipefail\nRUNS=(\n");
    for p in plans {
        s.push_str(&format!("  {}\n", quote(&p.plan.name)));
    }
    s.push_str(")\n");
    s.push_str(&format!(
        "exec {} run {} --out {} --only \"${{RUNS[$SLURM_ARRAY_TASK_ID]}}\"\n",
        quote(rxalign),
        quote(&file.display().to_string()),
        quote(&out.display().to_string())
    ));
    s
}

pub fn run(a: &RunArgs, plugins: &Plugins) -> anyhow::Result<()> {
    let (exp, all) = load(&a.file, plugins)?;
    // Every run's settings are checked before any work starts.
    let mut plans = all.clone();
    if let Some(only) = &a.only {
        plans.retain(|t| {
            let p = &t.plan;
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
    // The whole plan, whichever runs this process runs; refused where the
    // folder holds runs of a group with other settings that this would not
    // replace.
    claim_plan(&dir, &exp, &all, &plans, a.overwrite)?;
    outln!("{}: {} run(s) into {}", exp.file.name, plans.len(), dir.display());
    let options = RunOptions {
        jobs: a.jobs,
        overwrite: a.overwrite,
    };
    let reporter = TerminalReporter::new(plans.len());
    let outcomes = run_all(&plans, plugins, &dir, &options, &reporter);
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Refused(_)))
        .count();
    let (runs, _) = finished_runs(&dir)?;
    // No table when no run has results (every run failed).
    if !runs.is_empty() {
        outln!("\nfinal test metrics (mean ± std over seeds; definitions: `rxalign eval --help`, README):\n");
        out!("{}", compare(&runs).render(Format::Text));
        outln!("({})", Mean::PerVisit.describe());
        if let Some(note) = no_ddi_graph_note(runs.iter().map(|r| &r.folder)) {
            outln!("{note}");
        }
    }
    anyhow::ensure!(
        failed + refused == 0,
        "{} of {} run(s) failed{}; the others are intact (`rxalign status {}` shows each run)",
        failed + refused,
        plans.len(),
        if refused > 0 {
            format!(" ({refused} refused to start)")
        } else {
            String::new()
        },
        dir.display()
    );
    Ok(())
}

pub fn compare_runs(a: &CompareArgs) -> anyhow::Result<()> {
    let (runs, unfinished) = finished_runs(&a.dir)?;
    anyhow::ensure!(!runs.is_empty(), "no finished run under {}", a.dir.display());
    let mean = Mean::from(a.mean);
    let Some(format) = a.format.format() else {
        anyhow::ensure!(
            mean == Mean::PerVisit,
            "--format json has the per-visit means only; the per-patient means are in each run's summary.json (`per_patient`)"
        );
        let report = crate::report::CompareReport::of(&a.dir, &runs, unfinished);
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    };
    out!("{}", compare_with(&runs, mean).render(format));
    if format != Format::Csv {
        outln!("\n({})", mean.describe());
    }
    if let Some(note) = no_ddi_graph_note(runs.iter().map(|r| &r.folder)) {
        warnln!("({note})");
    }
    if unfinished > 0 {
        warnln!("({unfinished} unfinished run(s) left out)");
    }
    Ok(())
}

/// `1h02m`, `3m05s`, `12.3s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}

/// One row of `status`.
fn status_row(entry: &RunEntry) -> Vec<String> {
    let state = match (&entry.problem, entry.state()) {
        (Some(_), _) | (_, None) => "unreadable".to_string(),
        (None, Some(s)) => s.to_string(),
    };
    let record = entry.record.as_ref();
    let (group, seed) = match (record, &entry.planned) {
        (Some(r), _) => (r.group.clone(), r.seed.to_string()),
        (None, Some(p)) => (p.group.clone(), p.seed.to_string()),
        (None, None) => (String::new(), String::new()),
    };
    let stage = record
        .and_then(|r| r.current.as_ref().map(|c| (c, r.stages.len())))
        .map_or(String::new(), |(c, n)| {
            format!("{}/{n} {}", c.index + 1, c.method)
        });
    let progress = record
        .and_then(|r| r.current.as_ref())
        .filter(|c| c.total > 0)
        .map_or(String::new(), |c| {
            format!(
                "{}/{} ({:.0}%)",
                c.step,
                c.total,
                100.0 * c.step as f64 / c.total as f64
            )
        });
    let elapsed = record
        .and_then(|r| r.elapsed_seconds())
        .map_or(String::new(), duration);
    let (mut method, mut jaccard, mut ddi) = (String::new(), String::new(), String::new());
    if let Some(summary) = entry.summary() {
        // The last method the run recorded: its last stage's.
        if let Some(m) = summary.ordered().last() {
            method = m.to_string();
            let f = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{v:.4}"));
            jaccard = f(summary.metric(m, "jaccard"));
            ddi = f(summary.metric(m, "ddi_rate"));
        }
    }
    let note = match (&entry.problem, record) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) if r.state() == RunState::Failed => r.error.clone().unwrap_or_default(),
        (None, Some(r)) if r.state() == RunState::Interrupted => format!(
            "its process ({}) is gone; `rxalign run` resumes it",
            r.writer
                .as_ref()
                .map_or("?".into(), |w| format!("pid {} on {}", w.pid, w.host))
        ),
        // Another machine's process: whether it still runs cannot be told
        // from here; its last update says how long it has been silent.
        (None, Some(r))
            if r.state() == RunState::Running
                && r.writer.as_ref().is_some_and(|w| w.is_alive().is_none()) =>
        {
            let ago = r.seconds_since_update();
            format!(
                "written by pid {} on {}: whether it still runs cannot be told from this machine; last update {} ago",
                r.writer.as_ref().map_or(0, |w| w.pid),
                r.writer.as_ref().map_or("?", |w| w.host.as_str()),
                duration(ago)
            )
        }
        _ => String::new(),
    };
    vec![
        entry.name.clone(),
        group,
        seed,
        state,
        stage,
        progress,
        elapsed,
        method,
        jaccard,
        ddi,
        note,
    ]
}

pub fn status(a: &StatusArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.dir.is_dir(), "{}: no such folder", a.dir.display());
    let all = experiments(&a.dir)?;
    anyhow::ensure!(
        !all.is_empty(),
        "no experiment under {} (`rxalign run FILE --out {}` makes one)",
        a.dir.display(),
        a.dir.display()
    );
    let Some(format) = a.format.format().filter(|_| !a.json) else {
        outln!(
            "{}",
            serde_json::to_string_pretty(&crate::report::StatusReport::of(&all))?
        );
        return Ok(());
    };
    let header: Vec<String> = [
        "run",
        "group",
        "seed",
        "status",
        "stage",
        "progress",
        "elapsed",
        "last method",
        "test jaccard",
        "test ddi_rate",
        "note",
    ]
    .map(String::from)
    .to_vec();
    for (k, exp) in all.iter().enumerate() {
        let mut counts = std::collections::BTreeMap::new();
        for r in &exp.runs {
            *counts
                .entry(r.state().map_or("unreadable".to_string(), |s| s.to_string()))
                .or_insert(0) += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        if k > 0 {
            outln!();
        }
        outln!(
            "experiment {}{} ({}): {} run(s): {}",
            exp.folder.name(),
            exp.record
                .as_ref()
                .map_or(String::new(), |r| format!(" from {}", r.file)),
            exp.folder.root().display(),
            exp.runs.len(),
            counts.join(", ")
        );
        if let Some(p) = &exp.problem {
            outln!("  ({p})");
        }
        let rows: Vec<Vec<String>> = exp.runs.iter().map(status_row).collect();
        out!("{}", render_table(&header, &rows, format));
    }
    outln!(
        "\ntest jaccard and test ddi_rate: the last method's per-visit means on the test split (summary.json); `rxalign compare DIR` has every method."
    );
    if let Some(note) = no_ddi_graph_note(all.iter().flat_map(|e| e.runs.iter().map(|r| &r.folder))) {
        outln!("{note}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The folder of an experiment's runs (runs/<experiment name>).
    dir: PathBuf,
    /// Where to write the figures (PNG and SVG): a new or empty folder.
    #[arg(long)]
    out: PathBuf,
    /// Write into a folder that is not empty, replacing the figures of
    /// the same names (nothing else in it is touched).
    #[arg(long)]
    overwrite: bool,
}

pub fn plot(a: &PlotArgs) -> anyhow::Result<()> {
    super::refuse_non_empty(&a.out, a.overwrite, "the figures")?;
    let files = rxalign_experiment::plot::plot_experiment(&a.dir, &a.out)?;
    for f in files {
        outln!("wrote {}", f.display());
    }
    Ok(())
}
