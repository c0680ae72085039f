//! [`Estimate`]: one calibrated divergence or information value of a layer, with its error
//! fields, and [`Bias`], what kind of number it is. Shared by every estimator, the
//! calibration and the bounds.

use serde::{Deserialize, Serialize};

/// What kind of number an estimate is, with respect to the quantity it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    /// A consistent estimate with no one-sided guarantee (kNN and Gaussian KL).
    Estimate,
    /// The exact empirical value on the points used (exact W1 on its subsample).
    Exact,
    /// Never above the empirical quantity (sliced W1).
    LowerBound,
    /// Never below the empirical quantity (the primal cost of a feasible Sinkhorn plan).
    UpperBound,
}

/// One calibrated divergence of one layer (see [`crate::calibrate`] for each field's method).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub value: f64,
    /// The interval of the divergence: [min(value, excess) − t·se_excess, max(value, excess) +
    /// t·se], NaN when there are no resamples. Its coverage is measured by `funnel selftest`.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub lo: f64,
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub hi: f64,
    /// Standard error of the value, from the half-samples.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub se: f64,
    /// Mean of the size-matched permutation null: the estimator's value at these sizes when
    /// train and test agree (its floor).
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub null: f64,
    /// Standard deviation and 95% quantile of the permutation null.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub null_sd: f64,
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub null_q95: f64,
    /// (1 + #{null ≥ value} + failed permutations) / (1 + all permutations).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub p_value: f64,
    /// Permutations that produced a null value.
    #[serde(default)]
    pub permutations: usize,
    /// value − null: the null-corrected (debiased) value, with its interval.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub excess: f64,
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub excess_lo: f64,
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub excess_hi: f64,
    /// Whether the p-value clears Holm's threshold over the layers (set by
    /// [`crate::bounds::assemble`]; false until then).
    #[serde(default)]
    pub resolved: bool,
    /// One-sided upper end at level 1 − α/m, simultaneous over the m layers (Bonferroni):
    /// max(value + t_{1−α/m}·se, excess + t_{1−α/m}·se_excess). What the bounds are computed
    /// from (set by [`crate::bounds::assemble`]; NaN until then, or without half-samples).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub upper: f64,
    /// The smallest excess this layer could resolve at these sizes: z_{1−α/m}·sd_null, with m
    /// the layers tested (set by [`crate::bounds::assemble`]).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub resolution: f64,
    /// Roughly the points per side that would resolve the measured excess, assuming the null's
    /// spread falls as 1/√n (NaN when resolved, when the excess is ≤ 0, or when it is already
    /// at or above the resolution).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub points_needed: f64,
    pub estimator: String,
    pub bias: Bias,
    /// Points used per side, summed over classes.
    pub points_train: usize,
    pub points_test: usize,
    /// Largest dimension the estimator worked in (span rank, after any truncation).
    pub dims: usize,
    /// Half-sample resamples that produced a value.
    pub resamples: usize,
    /// The label term: KL(π_tr ‖ π_te) for KL, TV(π_tr, π_te) for W1.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub label_term: f64,
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub seconds: f64,
    /// Caveats a reader must see (ties, truncation, failures).
    pub notes: Vec<String>,
    /// Why there is no value, when there is none.
    pub error: Option<String>,
    /// The half-sample values in draw order, NaN where the estimator failed on a draw. Kept in
    /// memory for the paired ratio between consecutive layers ([`crate::bounds`]); not written.
    #[serde(skip)]
    pub halves: Vec<f64>,
    /// Identifies the half-samples' index draws (shared seed, resample count, class sizes):
    /// equal keys at two layers mean that draw b took the same examples at both, so the two
    /// layers' half-sample values are paired. `None` when the draws were the layer's own.
    #[serde(skip)]
    pub halves_key: Option<u64>,
}

fn nan() -> f64 {
    f64::NAN
}

impl Estimate {
    /// Whether the estimate has a value.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.value.is_finite()
    }
}
