//! The `funnel` command line.
//!
//! Exit codes: 0 success; 1 internal error (e.g. the results folder cannot be written);
//! 2 bad input (command line, config, data file) with nothing written; 3 the run finished but
//! failed (e.g. training diverged, with the reason in its `summary.json`; or an estimator of
//! `funnel estimate` gave no value); 130 interrupted.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use funnel::error::Kind;
use funnel::results::Status;
use funnel::{cmd, interrupt, sweep};
use tracing_subscriber::EnvFilter;

/// Measure where in a deep network generalization happens: layer-wise KL and W1
/// generalization bounds (He & Goldfeld, arXiv 2404.03176).
#[derive(Parser)]
#[command(name = "funnel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    sweep::die_with_parent();
    interrupt::install();
    let cli = Cli::parse();
    match cmd::dispatch(&cli.command) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(3),
        Err(e) => match e.kind {
            Kind::Input => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Kind::Internal => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
            Kind::Interrupted => {
                eprintln!("interrupted: {e}");
                ExitCode::from(interrupt::EXIT_INTERRUPTED)
            }
        },
    }
}
