//! The `vouch` command line: parse, set up the log, run (see `vouch::cli`).

use clap::Parser;
use std::process::ExitCode;
use vouch::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    vouch::telemetry::init(&cli.log, cli.log_format == LogFormat::Pretty);
    let outcome = actix_web::rt::System::new().block_on(vouch::cli::run(cli.command));
    vouch::cli::exit_code(outcome)
}
