//! `rxalign`: medication recommendation as a sequence of add/remove
//! decisions, with list-wise and step-wise rewards.

mod commands;
mod output;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rxalign",
    version,
    about = "Align medication-recommending policies without overprescription"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make, describe and convert datasets.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Score a predictions file with every metric.
    Eval(commands::eval::EvalArgs),
    /// Fit one non-learned baseline and write its predictions file.
    Baseline(commands::baselines::BaselineArgs),
    /// Print the runs an experiment file expands to, with their overrides.
    Plan(commands::experiment::PlanArgs),
    /// Run an experiment file: every run of its ablations, each into its run
    /// folder; finished runs are not run again.
    Run(commands::experiment::RunArgs),
    /// Every experiment's runs with their status, stage, progress, elapsed
    /// time and, once finished, test Jaccard and DDI rate.
    Status(commands::experiment::StatusArgs),
    /// Final test metrics of an experiment's runs per variant: mean and
    /// standard deviation over seeds.
    Compare(commands::experiment::CompareArgs),
    /// Figures of an experiment's runs, as PNG and SVG: learning curves,
    /// the safety-accuracy plane, list sizes, the reward by term.
    Plot(commands::experiment::PlotArgs),
    /// Language models on their own: check a checkpoint.
    #[command(subcommand)]
    Lm(commands::lm::LmCommand),
    /// The egui dashboard: runs, curves, per-drug trajectories, ablations
    /// and drugs of a runs folder, refreshed while runs write.
    Dashboard(commands::dashboard::DashboardArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(c) => commands::data::run(c),
        Command::Eval(a) => commands::eval::run(&a),
        Command::Baseline(a) => commands::baselines::run_one(&a),
        Command::Plan(a) => commands::experiment::plan(&a),
        Command::Run(a) => commands::experiment::run(&a),
        Command::Status(a) => commands::experiment::status(&a),
        Command::Compare(a) => commands::experiment::compare_runs(&a),
        Command::Plot(a) => commands::experiment::plot(&a),
        Command::Lm(c) => commands::lm::run(c),
        Command::Dashboard(a) => commands::dashboard::run(&a),
    };
    let result = result.and_then(|()| match output::failure() {
        Some(f) => Err(anyhow::anyhow!(f)),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::warnln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
