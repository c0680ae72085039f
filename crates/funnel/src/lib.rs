//! funnel as a library: the command line's modules, so that fuzz targets (`fuzz/`), benches and
//! other tools can call the same config parser, loaders and commands the `funnel` binary runs.
//! The binary (`src/main.rs`) is a thin dispatcher over these.

pub mod backend;
pub mod config;
pub mod estimate;
pub mod fuzzing;
pub mod gibbs;
pub mod interrupt;
pub mod measure;
pub mod plots;
pub mod points;
pub mod prepare;
pub mod regenerate;
pub mod report;
pub mod results;
pub mod run;
pub mod selftest;
pub mod sweep;

/// How a command failed; decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad config, data or argument: exit 2, nothing written.
    Input(String),
    /// Anything else: exit 1.
    Internal(String),
    /// Ctrl-C / SIGTERM: exit 130 after the finished work was written (see [`interrupt`]).
    Interrupted(String),
}
