//! Every file format funnel writes and reads back, in one place: the run folder itself
//! ([`run_dir`]: staged, atomic writes), `summary.json` ([`summary`], typed), `layers.csv` and
//! `training.csv` ([`layers_csv`]), the layers file `layers.npz` ([`layers_npz`]), `model.bpk` ([`model`]), a sweep's `summary.csv`
//! ([`sweep_dir`]) and the files of `funnel gibbs` ([`gibbs`]) and `funnel estimate --json` ([`estimate_json`]).

pub mod estimate_json;
pub mod gibbs;
pub mod layers_csv;
pub mod layers_npz;
pub mod model;
pub mod run_dir;
pub mod summary;
pub mod sweep_dir;

pub use run_dir::{write_atomic, RunDir};
pub use summary::*;
