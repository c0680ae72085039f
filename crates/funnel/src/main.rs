//! The `funnel` command line.
//!
//! Exit codes: 0 success; 1 internal error (e.g. the results folder cannot be written);
//! 2 bad input (command line, config, data file) with nothing written; 3 the run finished but
//! failed (e.g. training diverged, with the reason in its `summary.json`; or an estimator of
//! `funnel estimate` gave no value).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use funnel::{
    backend, estimate, gibbs, interrupt, measure, regenerate, report, run, selftest, sweep,
    CliError,
};
use tracing_subscriber::EnvFilter;

/// Measure where in a deep network generalization happens: layer-wise KL and W1
/// generalization bounds (He & Goldfeld, arXiv 2404.03176).
#[derive(Parser)]
#[command(name = "funnel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network from a config, capture every layer on the training and the test set,
    /// estimate per-layer KL and W1 with null baselines and CIs, and write the bounds.
    Run(run::RunArgs),
    /// Estimate KL(P‖Q) and W1(P, Q) between two point clouds in files (CSV or .npy), each
    /// with its null baseline and confidence interval.
    Estimate(estimate::EstimateArgs),
    /// Measure every layer of a finished run's saved model against another labelled data set
    /// (shifted or production data), without retraining; writes a results folder like `run`.
    Measure(measure::MeasureArgs),
    /// Check every estimator against closed forms (Gaussian pairs, shifted Gaussians, 1-D
    /// pairs, uniform boxes) and exit 3 when one leaves its documented tolerance.
    Selftest(selftest::SelftestArgs),
    /// Run a study: a base config, axes over config keys and seeds; every cell a `funnel run`
    /// child process, resumable and shardable; writes summary.csv, aggregate.csv, rankings.csv.
    Sweep(sweep::SweepArgs),
    /// The Gibbs algorithm's expected generalization gap against n, computed exactly by
    /// enumerating every weight vector of a tiny quantized network (the O(1/n) rate).
    Gibbs(gibbs::GibbsArgs),
    /// Combine sweep folders of one study (e.g. its shards) into one, with the aggregate files.
    Merge(sweep::MergeArgs),
    /// Regenerate `report.md` and the figures (`plots/`) of a finished run from its
    /// `summary.json`, or the figures of a sweep folder from its `summary.csv`, without
    /// rerunning anything.
    Report(regenerate::ReportArgs),
    /// List the backends this binary was built with and the devices each can use
    /// (`--device N` counts wgpu adapters in this order).
    Devices,
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
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Estimate(args) => estimate::estimate(&args),
        Command::Measure(args) => measure::measure(&args),
        Command::Selftest(args) => selftest::selftest(&args),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Merge(args) => sweep::merge(&args),
        Command::Gibbs(args) => gibbs::gibbs(&args),
        Command::Report(args) => regenerate::report(&args),
        Command::Devices => {
            for line in backend::describe() {
                run::say(format_args!("{line}"));
            }
            Ok(report::Status::Ok)
        }
    };
    match result {
        Ok(report::Status::Ok) => ExitCode::SUCCESS,
        Ok(report::Status::Failed) => ExitCode::from(3),
        Err(CliError::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Internal(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
        Err(CliError::Interrupted(msg)) => {
            eprintln!("interrupted: {msg}");
            ExitCode::from(interrupt::EXIT_INTERRUPTED)
        }
    }
}
