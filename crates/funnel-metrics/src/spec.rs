//! Settings of the measurement: which estimators, how many points, how much calibration.

use funnel_model::Stochastic;

use crate::divergence::Bias;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// Wang–Kulkarni–Verdú k-nearest-neighbour estimator.
    Knn,
    /// Closed form between fitted Gaussians.
    Gaussian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum W1Estimator {
    /// Optimal assignment on equal-size subsamples (exact empirical W1).
    Exact,
    /// Mean 1-D W1 over random directions (a lower bound of W1).
    Sliced,
}

/// `[metrics]` in a config. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    pub kl: KlEstimator,
    /// Neighbour order of the kNN estimator.
    pub k: usize,
    pub w1: W1Estimator,
    /// Cap on points per class and side for the exact W1 assignment (O(n³) solve).
    pub exact_max_per_class: usize,
    /// Random directions of the sliced W1.
    pub sliced_directions: usize,
    /// Points captured per split (stratified subsample of the training and of the test set).
    pub max_points: usize,
    /// Half-sample resamples for the confidence intervals (0 disables them); see
    /// [`crate::divergence`] for why half-samples replace the with-replacement bootstrap.
    pub bootstrap: usize,
    /// Coverage of the interval.
    pub confidence: f64,
    /// The clip c of the clipped cross-entropy (its range, for the KL bound: σ = c/2).
    pub ce_clip: f64,
    /// Whether stochastic layers draw fresh randomness during capture and loss evaluation
    /// (`active`: the paper's stochastic network) or are switched off (`off`).
    pub stochastic_layers: Stochastic,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            kl: KlEstimator::Knn,
            k: 5,
            w1: W1Estimator::Exact,
            exact_max_per_class: 1000,
            sliced_directions: 128,
            max_points: 2000,
            bootstrap: 30,
            confidence: 0.95,
            ce_clip: 5.0,
            stochastic_layers: Stochastic::Active,
        }
    }
}

impl MetricsSpec {
    /// Range checks; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.k == 0 {
            return Err(("k", "must be ≥ 1".into()));
        }
        if !(2..=10_000).contains(&self.exact_max_per_class) {
            return Err((
                "exact_max_per_class",
                format!(
                    "must be in [2, 10000] (the assignment holds an n×n cost matrix), got {}",
                    self.exact_max_per_class
                ),
            ));
        }
        if !(1..=65_536).contains(&self.sliced_directions) {
            return Err((
                "sliced_directions",
                format!("must be in [1, 65536], got {}", self.sliced_directions),
            ));
        }
        if !(4..=10_000_000).contains(&self.max_points) {
            return Err((
                "max_points",
                format!("must be in [4, 10000000], got {}", self.max_points),
            ));
        }
        if self.kl == KlEstimator::Knn && self.k + 1 > self.max_points / 2 {
            return Err((
                "k",
                format!(
                    "k = {} needs more than k points per class, but max_points = {} leaves at most {} per half of the test cloud",
                    self.k,
                    self.max_points,
                    self.max_points / 2
                ),
            ));
        }
        if self.bootstrap > 10_000 {
            return Err((
                "bootstrap",
                format!("at most 10000 resamples, got {}", self.bootstrap),
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err((
                "confidence",
                format!("must be in (0, 1), got {}", self.confidence),
            ));
        }
        if !(self.ce_clip.is_finite() && self.ce_clip > 0.0) {
            return Err((
                "ce_clip",
                format!("must be finite and > 0, got {}", self.ce_clip),
            ));
        }
        Ok(())
    }

    /// Estimator names as printed and written, e.g. `knn(k=5)`.
    pub fn kl_name(&self) -> String {
        match self.kl {
            KlEstimator::Knn => format!("knn(k={})", self.k),
            KlEstimator::Gaussian => "gaussian".into(),
        }
    }

    /// What the chosen W1 estimator's number is.
    pub fn w1_bias(&self) -> Bias {
        match self.w1 {
            W1Estimator::Exact => Bias::Exact,
            W1Estimator::Sliced => Bias::LowerBound,
        }
    }

    pub fn w1_name(&self) -> String {
        match self.w1 {
            W1Estimator::Exact => format!("exact(≤{}/class)", self.exact_max_per_class),
            W1Estimator::Sliced => format!("sliced({})", self.sliced_directions),
        }
    }
}
