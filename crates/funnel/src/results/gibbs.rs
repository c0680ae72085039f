//! The files of a `funnel gibbs` run: `gibbs.csv`, `fits.csv` and `summary.json` (written by
//! `cmd::gibbs`, read back by `funnel report`), for one network ([`GibbsSummary`]) or for a list
//! of architectures of one parameter budget ([`GibbsBudgetSummary`], whose CSVs carry the
//! architecture's columns first).

use std::path::Path;

use funnel_gibbs::{BudgetResults, GibbsResults, GibbsSpec};
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

/// `summary.json` of a Gibbs run over several architectures (`[[gibbs.architecture]]`).
#[derive(Serialize, Deserialize)]
pub struct GibbsBudgetSummary {
    pub name: String,
    pub run_id: String,
    pub funnel_version: String,
    pub created: String,
    pub spec: GibbsSpec,
    pub seconds: f64,
    #[serde(flatten)]
    pub results: BudgetResults,
}

/// A Gibbs run folder's `summary.json`, of either kind.
pub enum GibbsRun {
    Single(GibbsSummary),
    Budget(GibbsBudgetSummary),
}

/// `summary.json`'s bytes.
pub fn to_json<T: Serialize>(summary: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(summary).expect("a Gibbs summary serializes")
}

/// Reads a Gibbs run's `summary.json` (a budget run's when it has `architectures`); the error
/// names the file and the field.
pub fn read(dir: &Path) -> Result<GibbsRun, CliError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let err = |e: serde_path_to_error::Error<serde_json::Error>| {
        CliError::input(format!("{}: {e}", path.display()))
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    if value.get("architectures").is_some() {
        serde_path_to_error::deserialize(de)
            .map(GibbsRun::Budget)
            .map_err(err)
    } else {
        serde_path_to_error::deserialize(de)
            .map(GibbsRun::Single)
            .map_err(err)
    }
}

/// The architecture columns of a budget run's CSVs.
const ARCH_COLUMNS: [&str; 6] = [
    "architecture",
    "depth",
    "dropout",
    "eta_product",
    "params",
    "population_bayes_risk",
];

fn arch_fields(a: &funnel_gibbs::ArchitectureResults) -> Vec<String> {
    vec![
        a.architecture.widths_joined("-"),
        a.depth.to_string(),
        a.architecture.dropout.to_string(),
        a.eta_product.to_string(),
        a.results.params.to_string(),
        a.results.population_bayes_risk.to_string(),
    ]
}

/// `gibbs.csv` of a budget run: one row per (architecture, γ, n): the architecture (widths
/// joined by `-`), L, p, Πη, P and min_w R(w), then the columns of [`rows_csv`], then the 95%
/// interval of the control-variate E gap (± 1.96 se) and both bounds without Πη.
pub fn budget_rows_csv(r: &BudgetResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = ARCH_COLUMNS.to_vec();
    header.extend([
        "gamma",
        "n",
        "gap_mean",
        "gap_stderr",
        "gap_cv_mean",
        "gap_cv_stderr",
        "gap_cv_lo95",
        "gap_cv_hi95",
        "train_loss",
        "test_loss",
        "bound_gibbs",
        "bound_finite",
        "bound_gibbs_without_eta",
        "bound_finite_without_eta",
        "effective_configs",
    ]);
    w.write_record(&header).expect("in memory");
    for a in &r.architectures {
        let eta = a.eta_product.sqrt();
        for row in &a.results.rows {
            let mut rec = arch_fields(a);
            rec.extend(
                [
                    row.gamma,
                    row.n as f64,
                    row.gap_mean,
                    row.gap_stderr,
                    row.gap_cv_mean,
                    row.gap_cv_stderr,
                    row.gap_cv_mean - 1.96 * row.gap_cv_stderr,
                    row.gap_cv_mean + 1.96 * row.gap_cv_stderr,
                    row.train_loss,
                    row.test_loss,
                    row.bound_gibbs,
                    row.bound_finite,
                    row.bound_gibbs / eta,
                    row.bound_finite / eta,
                    row.effective_configs,
                ]
                .iter()
                .map(|v| v.to_string()),
            );
            w.write_record(&rec).expect("in memory");
        }
    }
    w.into_inner().expect("in memory")
}

/// `fits.csv` of a budget run: the fitted rate per (architecture, γ).
pub fn budget_fits_csv(r: &BudgetResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = ARCH_COLUMNS.to_vec();
    header.extend(["gamma", "slope", "slope_stderr", "points_used"]);
    w.write_record(&header).expect("in memory");
    for a in &r.architectures {
        for f in &a.results.fits {
            let used: Vec<String> = f.points_used.iter().map(|n| n.to_string()).collect();
            let mut rec = arch_fields(a);
            rec.extend([
                f.gamma.to_string(),
                f.slope.to_string(),
                f.slope_stderr.to_string(),
                used.join(" "),
            ]);
            w.write_record(&rec).expect("in memory");
        }
    }
    w.into_inner().expect("in memory")
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
