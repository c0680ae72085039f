//! `funnel sweep` and `funnel merge`: a study (a base config, axes over any config key, a list
//! of seeds) expanded into cells, each run as a child `funnel run` process, with resume,
//! shards and the aggregate files `summary.csv`, `aggregate.csv` and `rankings.csv`.
//!
//! Layout of a sweep folder `OUT/<name>/` (`OUT/<name>-shard-I-of-N/` for a shard):
//! `study.toml` (the study as written), `base.toml` (the base config as written),
//! `sweep.json` (fingerprint, shard, every cell of the study with its overrides), `cells/<id>/`
//! (the cell's run folder `cells/<id>/<run-id>/`, or `error.txt` when the child failed without
//! writing one), and the three CSV files.
//!
//! * [`study`]: the study file expanded into cells, fingerprints, shards;
//! * [`exec`]: one cell as a child `funnel run`, resume, and dying with the parent;
//! * [`aggregate`]: `aggregate.csv` across seeds per configuration, and the files it writes;
//! * [`rankings`]: `rankings.csv` from `summary.csv` (τ-b with bootstrap intervals over
//!   configurations, τ of the configuration means, the granulated τ).
//!
//! `summary.csv`'s columns are `results::sweep_dir`'s; the commands are `cmd::sweep` and
//! `cmd::merge`.

pub mod aggregate;
pub mod exec;
pub mod rankings;
pub mod study;

pub use crate::results::sweep_dir::{read_meta, Cell, SweepMeta};
pub use aggregate::{write_aggregates, Aggregated};
pub use exec::{cell_done, copy_dir, die_with_parent, run_cell, Outcome};
pub use study::{parse_shard, shard_cells, study_of, Study};
