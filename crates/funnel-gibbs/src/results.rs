//! What the experiment reports: one row per (γ, n) cell, one slope fit per γ, and the
//! summary of a run.

use serde::{Deserialize, Serialize};

use crate::spec::Architecture;

/// One (γ, n) cell: averages over the training sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GibbsRow {
    pub gamma: f64,
    pub n: usize,
    /// Mean over training sets of gap(S) = Σ_w P(w|S)·(R(w) − L_S(w)).
    pub gap_mean: f64,
    /// Standard error of `gap_mean` (sample standard deviation / √train_sets; NaN for one set).
    #[serde(deserialize_with = "nan_if_null")]
    pub gap_stderr: f64,
    /// The control-variate estimate of the same E gap (module docs): mean of
    /// gap(S) − Σ_w P_R(w)·(R(w) − L_S(w)). Unbiased, with a much smaller standard error.
    pub gap_cv_mean: f64,
    /// Standard error of `gap_cv_mean`.
    #[serde(deserialize_with = "nan_if_null")]
    pub gap_cv_stderr: f64,
    /// Mean over training sets of E_{P(·|S)} L_S.
    pub train_loss: f64,
    /// Mean over training sets of E_{P(·|S)} R (the exact population risk under the posterior).
    pub test_loss: f64,
    /// √2·γ·√Πη / n.
    pub bound_gibbs: f64,
    /// sqrt(2·¼·Πη·P·ln K / n).
    pub bound_finite: f64,
    /// Mean over training sets of exp(entropy of P(·|S)): 1 when the posterior sits on one
    /// configuration, K^P when it is uniform.
    pub effective_configs: f64,
}

/// Least-squares fit of ln(gap) on ln(n) for one γ (see [`fit`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GibbsFit {
    pub gamma: f64,
    /// Slope of ln(gap) against ln(n): −1 for the O(1/n) rate; NaN with fewer than 2 points.
    #[serde(deserialize_with = "nan_if_null")]
    pub slope: f64,
    /// The usual least-squares standard error of the slope (from the residuals); NaN with fewer
    /// than 3 points.
    #[serde(deserialize_with = "nan_if_null")]
    pub slope_stderr: f64,
    /// The training-set sizes whose gap entered the fit.
    pub points_used: Vec<usize>,
}

/// Everything [`run`](crate::run) measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GibbsResults {
    /// One row per (γ, n), γ-major in the order of the spec, then n in the order of the spec.
    pub rows: Vec<GibbsRow>,
    /// One fit per γ, in the order of the spec.
    pub fits: Vec<GibbsFit>,
    /// K^P.
    pub configs: usize,
    /// P = hidden·dim + hidden.
    pub params: usize,
    /// K.
    pub levels: usize,
    /// min_w R(w): the smallest population risk in the weight set (the Bayes risk of the finite
    /// class on the pool population).
    pub population_bayes_risk: f64,
}

/// What [`run_architectures`](crate::run_architectures) measured for one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureResults {
    pub architecture: Architecture,
    /// L, the number of hidden (dropout) layers.
    pub depth: usize,
    /// Πη = Π_l (1 − p^{h_l}) ([`Architecture::eta_product`]); the rows' bounds use it.
    pub eta_product: f64,
    /// The rows (bounds with this Πη), fits, sizes and smallest population risk of this
    /// architecture, as for a single network.
    pub results: GibbsResults,
}

/// Everything [`run_architectures`](crate::run_architectures) measured, one entry per
/// architecture in the order of the spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetResults {
    pub architectures: Vec<ArchitectureResults>,
}

/// Reads a JSON `null` (how serde_json writes NaN) back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Mean and standard error (sample sd / √m; NaN for m < 2), summed in order.
pub(crate) fn mean_stderr(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let m = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / m;
    let ss: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
    let stderr = if m >= 2.0 {
        (ss / (m - 1.0) / m).sqrt()
    } else {
        f64::NAN
    };
    (mean, stderr)
}

/// Least-squares fit of ln(gap) on ln(n) over the rows of `gamma` (compared exactly) whose gap
/// is resolved from 0, i.e. `gap_cv_mean > 2·gap_cv_stderr`: rows whose gap is not resolved
/// (including negative or NaN ones) are left out, since their logarithm is meaningless or
/// dominated by noise. The control-variate estimate is used because it has the same mean as
/// `gap_mean` and a much smaller error (module docs). Fewer than 2 points give a NaN slope.
pub fn fit(gamma: f64, rows: &[GibbsRow]) -> GibbsFit {
    let used: Vec<&GibbsRow> = rows
        .iter()
        .filter(|r| r.gamma == gamma && r.gap_cv_mean > 2.0 * r.gap_cv_stderr)
        .collect();
    let points_used = used.iter().map(|r| r.n).collect();
    let m = used.len() as f64;
    let (mut slope, mut slope_stderr) = (f64::NAN, f64::NAN);
    if used.len() >= 2 {
        let xs: Vec<f64> = used.iter().map(|r| (r.n as f64).ln()).collect();
        let ys: Vec<f64> = used.iter().map(|r| r.gap_cv_mean.ln()).collect();
        let (xm, ym) = (xs.iter().sum::<f64>() / m, ys.iter().sum::<f64>() / m);
        let sxx: f64 = xs.iter().map(|x| (x - xm) * (x - xm)).sum();
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - xm) * (y - ym)).sum();
        if sxx > 0.0 {
            slope = sxy / sxx;
            if used.len() >= 3 {
                let rss: f64 = xs
                    .iter()
                    .zip(&ys)
                    .map(|(x, y)| {
                        let e = y - ym - slope * (x - xm);
                        e * e
                    })
                    .sum();
                slope_stderr = (rss / (m - 2.0) / sxx).sqrt();
            }
        }
    }
    GibbsFit {
        gamma,
        slope,
        slope_stderr,
        points_used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_slope_and_skips_unresolved_points() {
        let row = |n: usize, gap: f64, se: f64| GibbsRow {
            gamma: 1.0,
            n,
            gap_mean: gap,
            gap_stderr: se,
            gap_cv_mean: gap,
            gap_cv_stderr: se,
            train_loss: 0.0,
            test_loss: 0.0,
            bound_gibbs: 0.0,
            bound_finite: 0.0,
            effective_configs: 1.0,
        };
        let rows: Vec<GibbsRow> = [10, 20, 40, 80]
            .iter()
            .map(|&n| row(n, 3.0 * (n as f64).powf(-0.7), 1e-6))
            .chain([row(160, 1e-3, 1e-3), row(320, -1e-3, 1e-4)])
            .collect();
        let f = fit(1.0, &rows);
        assert_eq!(f.points_used, vec![10, 20, 40, 80]);
        assert!((f.slope + 0.7).abs() < 1e-12, "{f:?}");
        assert!(f.slope_stderr < 1e-10);
        assert!(fit(2.0, &rows).slope.is_nan());
        assert!(fit(1.0, &rows[..1]).slope.is_nan());
    }
}
