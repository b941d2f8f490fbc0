//! `rxalign`: medication recommendation as a sequence of add/remove
//! decisions, with list-wise and step-wise rewards.

mod commands;
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
    /// The main job: fit every baseline, score them beside the references,
    /// and write a run folder.
    Baselines(commands::baselines::BaselinesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(c) => commands::data::run(c),
        Command::Eval(a) => commands::eval::run(&a),
        Command::Baseline(a) => commands::baselines::run_one(&a),
        Command::Baselines(a) => commands::baselines::run_all(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
