//! `rxalign`: the command over the built-in plugins. A researcher's own
//! command is the same few lines with `.plugin(...)` (see `rxalign_cli`).

fn main() -> std::process::ExitCode {
    rxalign_cli::App::new().run()
}
