//! `rxalign dashboard [RUNS_DIR]`: the egui dashboard over a runs folder.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// A runs folder (every experiment in it) or one experiment's folder;
    /// it is read live, while runs write into it.
    #[arg(default_value = "runs")]
    dir: PathBuf,
}

pub fn run(args: &DashboardArgs) -> anyhow::Result<()> {
    // A missing folder is shown as a notice in the window (runs may create
    // it later), but a path that is a file is a mistake worth stopping on.
    if args.dir.is_file() {
        anyhow::bail!("{}: is a file, not a runs folder", args.dir.display());
    }
    rxalign_dashboard::run_native(args.dir.clone())
        .with_context(|| format!("the dashboard on {}", args.dir.display()))
}
