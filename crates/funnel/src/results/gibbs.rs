//! The files of a `funnel gibbs` run: `gibbs.csv`, `fits.csv` and `summary.json` (written by
//! `cmd::gibbs`, read back by `funnel report`).

use std::path::Path;

use funnel_gibbs::{GibbsResults, GibbsSpec};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// `summary.json` of a Gibbs run.
#[derive(Serialize, Deserialize)]
pub struct GibbsSummary {
    pub name: String,
    pub run_id: String,
    pub funnel_version: String,
    pub created: String,
    pub spec: GibbsSpec,
    pub seconds: f64,
    #[serde(flatten)]
    pub results: GibbsResults,
}

/// `summary.json`'s bytes.
pub fn to_json(summary: &GibbsSummary) -> Vec<u8> {
    serde_json::to_vec_pretty(summary).expect("a Gibbs summary serializes")
}

/// Reads a Gibbs run's `summary.json`; the error names the file and the field.
pub fn read(dir: &Path) -> Result<GibbsSummary, CliError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}

/// `gibbs.csv`: one row per (γ, n).
pub fn rows_csv(r: &GibbsResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in &r.rows {
        w.serialize(row).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// `fits.csv`: the fitted rate per γ.
pub fn fits_csv(r: &GibbsResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["gamma", "slope", "slope_stderr", "points_used"])
        .expect("in memory");
    for f in &r.fits {
        let used: Vec<String> = f.points_used.iter().map(|n| n.to_string()).collect();
        w.write_record([
            f.gamma.to_string(),
            f.slope.to_string(),
            f.slope_stderr.to_string(),
            used.join(" "),
        ])
        .expect("in memory");
    }
    w.into_inner().expect("in memory")
}
