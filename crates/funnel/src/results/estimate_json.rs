//! What `funnel estimate --json` writes: both estimates with their nulls and intervals, the
//! two point files and the settings.

use std::path::PathBuf;

use funnel_metrics::{Bias, Estimate};
use serde::Serialize;

/// One side of the comparison, as reported.
#[derive(Serialize)]
pub struct Side {
    pub path: PathBuf,
    /// Points in the file.
    pub n: usize,
    pub dims: usize,
    /// Points used (after `--max-points`).
    pub used: usize,
}

#[derive(Serialize)]
pub struct PerSide {
    pub p: usize,
    pub q: usize,
}

/// One estimate in the JSON output (NaN and ±∞ are written as `null`).
#[derive(Serialize)]
pub struct EstimateJson<'a> {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// Mean, sd and 95% quantile of the size-matched permutation null, and the p-value.
    pub null: f64,
    pub null_sd: f64,
    null_q95: f64,
    pub p_value: f64,
    pub permutations: usize,
    /// value − null mean, with its interval.
    pub excess: f64,
    pub excess_lo: f64,
    pub excess_hi: f64,
    pub se: f64,
    pub estimator: &'a str,
    /// Points the estimator used per side.
    pub points: PerSide,
    /// `estimate`, `exact`, `lower_bound` or `upper_bound`.
    pub bias: Bias,
    /// Dimension the estimator worked in (rank of the pooled cloud, after any truncation).
    pub dims: usize,
    pub resamples: usize,
    pub seconds: f64,
    pub notes: Vec<String>,
    pub error: Option<String>,
}

/// A message of the layer estimator, in this command's terms: one class, P and Q.
pub fn for_pq(s: &str) -> String {
    s.strip_prefix("class 0: ")
        .unwrap_or(s)
        .replace("train cloud", "P cloud")
        .replace("test cloud", "Q cloud")
}

impl<'a> From<&'a Estimate> for EstimateJson<'a> {
    fn from(e: &'a Estimate) -> Self {
        EstimateJson {
            value: e.value,
            lo: e.lo,
            hi: e.hi,
            null: e.null,
            null_sd: e.null_sd,
            null_q95: e.null_q95,
            p_value: e.p_value,
            permutations: e.permutations,
            excess: e.excess,
            excess_lo: e.excess_lo,
            excess_hi: e.excess_hi,
            se: e.se,
            estimator: &e.estimator,
            points: PerSide {
                p: e.points_train,
                q: e.points_test,
            },
            bias: e.bias,
            dims: e.dims,
            resamples: e.resamples,
            seconds: e.seconds,
            notes: e.notes.iter().map(|n| for_pq(n)).collect(),
            error: e.error.as_deref().map(for_pq),
        }
    }
}

#[derive(Serialize)]
pub struct EstimateOutput<'a> {
    pub kl: EstimateJson<'a>,
    pub w1: EstimateJson<'a>,
    pub p: Side,
    pub q: Side,
    pub seed: u64,
    pub bootstrap: usize,
    pub confidence: f64,
    pub seconds: f64,
}
