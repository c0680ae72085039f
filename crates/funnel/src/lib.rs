//! funnel as a library: the command line's modules, so that fuzz targets (`fuzz/`), benches and
//! other tools can call the same config parser, loaders and commands the `funnel` binary runs.
//! The binary (`src/main.rs`) parses the command line and calls [`cmd::dispatch`].
//!
//! Layout (ARCHITECTURE.md has the whole map): `cmd/` the subcommands (the only place that
//! prints, through `term`); `pipeline/` the computation of a run; `results/` every file format;
//! `output/` tables and reports; `plots/` figures; `sweep/` studies; leaves: `backend`,
//! `arrays` (numpy `.npy`/`.npz`), `config`, `figure_spec`, `points` (point-cloud files), `interrupt`, `error`, `term`, `text`, `stats`,
//! `fuzzing`.

pub mod arrays;
pub mod backend;
pub mod cmd;
pub mod config;
pub mod error;
pub mod figure_spec;
pub mod fuzzing;
pub mod interrupt;
pub mod output;
pub mod pipeline;
pub mod plots;
pub mod points;
pub mod results;
pub mod stats;
pub mod sweep;
pub mod term;
pub mod text;
