//! `my-rxalign`: every `rxalign` subcommand, with this crate's plugins.

fn main() -> std::process::ExitCode {
    rxalign_cli::App::new().plugin(my_plugins::register).run()
}
