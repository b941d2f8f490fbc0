//! The `rxalign` command as a library: medication recommendation as a
//! sequence of add/remove decisions, with list-wise and step-wise rewards.
//!
//! A researcher's crate of plugins gets the whole command, every subcommand
//! with its flags, progress and errors, from a `main.rs` of a few lines:
//!
//! ```no_run
//! use rxalign_cli::{App, ExperimentError, Plugins};
//!
//! fn register(plugins: &mut Plugins) -> Result<(), ExperimentError> {
//!     // plugins.reward.register::<MyTermConfig>("my_term", |c, _| ...)?;
//!     # let _ = plugins;
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     App::new().plugin(register).run()
//! }
//! ```
//!
//! Its kinds are then known to `plan`, `run`, the resolver's errors and
//! `plugins` (the listing of every kind with its fields). The worked example
//! is the crate `examples/my-plugins` of the repository.

mod commands;
mod output;
pub mod report;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
pub use rxalign_experiment::{ExperimentError, Plugins};

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
    /// Every plugin kind this command knows, per slot, with its fields,
    /// their types, defaults and documentation.
    Plugins(commands::plugins::PluginsArgs),
    /// The egui dashboard: runs, curves, per-drug trajectories, ablations
    /// and drugs of a runs folder, refreshed while runs write.
    Dashboard(commands::dashboard::DashboardArgs),
}

/// A set of plugins a crate adds to the built-in ones: a function
/// `fn(&mut Plugins) -> Result<(), ExperimentError>` that registers them
/// (each slot of [`Plugins`] has its `register`), or a type of one's own.
pub trait Plugin {
    /// Registers this plugin's kinds; a kind already registered is an error.
    fn build(&self, plugins: &mut Plugins) -> Result<(), ExperimentError>;
}

impl<F: Fn(&mut Plugins) -> Result<(), ExperimentError>> Plugin for F {
    fn build(&self, plugins: &mut Plugins) -> Result<(), ExperimentError> {
        self(plugins)
    }
}

/// The `rxalign` command over the built-in plugins and any added with
/// [`App::plugin`].
#[derive(Debug)]
pub struct App {
    plugins: Plugins,
    /// The first registration that failed, reported by [`App::run`] before
    /// any command runs.
    error: Option<ExperimentError>,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// The command over [`Plugins::builtin`].
    pub fn new() -> Self {
        Self {
            plugins: Plugins::builtin(),
            error: None,
        }
    }

    /// Adds a plugin's kinds; a failure (a kind registered twice) is
    /// reported when the command runs, which it then refuses to do.
    #[must_use]
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        if self.error.is_none()
            && let Err(e) = plugin.build(&mut self.plugins)
        {
            self.error = Some(e);
        }
        self
    }

    /// The plugins the command knows.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// Parses the process's arguments and runs the command: the exit code
    /// says whether it succeeded (errors are printed on standard error).
    pub fn run(self) -> ExitCode {
        // This thread trains as one of the CPU backend's threads (with
        // `--jobs 1`, runs are on this thread). Only a pool built before
        // (rayon used earlier in the process) refuses, and the command
        // then runs as it would have without it.
        rxalign_policy::device::join_cpu_pool().ok();
        if let Some(e) = &self.error {
            output::warnln!("error: registering plugins: {e}");
            return ExitCode::FAILURE;
        }
        run_command(Cli::parse().command, &self.plugins)
    }
}

fn run_command(command: Command, plugins: &Plugins) -> ExitCode {
    let result = match command {
        Command::Data(c) => commands::data::run(c),
        Command::Eval(a) => commands::eval::run(&a),
        Command::Baseline(a) => commands::baselines::run_one(&a),
        Command::Plan(a) => commands::experiment::plan(&a, plugins),
        Command::Run(a) => commands::experiment::run(&a, plugins),
        Command::Plugins(a) => commands::plugins::run(&a, plugins),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters of a test kind.
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Weight {
        #[expect(dead_code, reason = "read by the reward, not the term")]
        weight: f64,
    }

    fn register_jaccard_again(plugins: &mut Plugins) -> Result<(), ExperimentError> {
        plugins
            .reward
            .register::<Weight>("jaccard", |_, _| Err("never built".to_string()))
    }

    #[test]
    fn a_kind_registered_twice_is_refused_before_any_command() {
        let app = App::new().plugin(register_jaccard_again);
        let e = app.error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            e.contains("reward term kind `jaccard` is registered twice"),
            "{e}"
        );
        // A plugin that registers a new kind is known to the command.
        let app = App::new().plugin(|p: &mut Plugins| {
            p.reward
                .register::<Weight>("my_term", |_, _| Err("never built".to_string()))
        });
        assert!(app.error.is_none());
        assert!(app.plugins().reward.kinds().contains(&"my_term"));
    }
}
