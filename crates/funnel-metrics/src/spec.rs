//! Settings of the measurement: which estimators, how many points, how much calibration.

use funnel_model::Stochastic;

use crate::estimate::Bias;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// Per layer: `smoothed` on layers with Gaussian noise, `gaussian` on linear, unmasked
    /// layers of span rank > [`AUTO_KNN_MAX_RANK`], `knn` otherwise (from the coverage panel
    /// of `funnel selftest`); see [`crate::resolve_kl`].
    Auto,
    /// Wang–Kulkarni–Verdú k-nearest-neighbour estimator.
    Knn,
    /// kNN inside each zero pattern plus the KL of the pattern and atom frequencies (exact
    /// chain rule): for layers with atoms, e.g. dropout, DropConnect, dead ReLUs
    /// ([`crate::atoms`]).
    #[serde(rename = "knn_atoms")]
    KnnAtoms,
    /// Closed form between fitted Gaussians.
    Gaussian,
    /// D(P̂∗N_β ‖ Q̂∗N_β) between the Gaussian-smoothed empirical measures, by Monte Carlo.
    Smoothed,
}

/// Largest span rank at which `kl = "auto"` uses the kNN estimator on a linear layer; above
/// it, `gaussian`.
pub const AUTO_KNN_MAX_RANK: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum W1Estimator {
    /// Optimal assignment on equal-size subsamples (exact empirical W1).
    Exact,
    /// Log-domain entropic OT; the plan is rounded to a feasible coupling and its primal cost
    /// reported, an upper bound of the empirical W1.
    Sinkhorn,
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
    /// Noise std β of the `smoothed` KL and of I(X; T_l) on layers without Gaussian noise of
    /// their own (layers with `gaussian_noise` use the model's std).
    pub beta: Option<f64>,
    /// Monte Carlo noise draws per point of the `smoothed` KL and the mixture entropies.
    pub mc_draws: usize,
    pub w1: W1Estimator,
    /// Cap on points per class and side for the exact W1 assignment (O(n³) solve).
    pub exact_max_per_class: usize,
    /// Entropic regularisation of `sinkhorn`, relative to the mean pairwise distance.
    pub sinkhorn_epsilon: f64,
    /// Cap on points per class and side for `sinkhorn`.
    pub sinkhorn_max_per_class: usize,
    /// Iteration cap of `sinkhorn` (per ε stage).
    pub sinkhorn_iterations: usize,
    /// Random directions of the sliced W1.
    pub sliced_directions: usize,
    /// Points captured per split (stratified subsample of the training and of the test set).
    pub max_points: usize,
    /// Half-sample resamples for the confidence intervals (0 disables them); see
    /// [`crate::calibrate`] for why half-samples replace the with-replacement bootstrap.
    pub bootstrap: usize,
    /// Permutations of the size-matched null (0 disables the null, its p-value and the
    /// resolution). A layer can be resolved only when 1/(1 + permutations) clears Holm's
    /// first threshold (1 − confidence)/layers: 99 resolves up to 5 layers at 95%.
    pub permutations: usize,
    /// Coverage of the interval.
    pub confidence: f64,
    /// The clip c of the clipped cross-entropy (its range, for the KL bound: σ = c/2).
    pub ce_clip: f64,
    /// Whether stochastic layers draw fresh randomness during capture and loss evaluation
    /// (`active`: the paper's stochastic network) or are switched off (`off`).
    pub stochastic_layers: Stochastic,
    /// Mutual information columns: I(T_l; Y) on every layer, I(X; T_l) on layers with Gaussian
    /// noise (or every layer when `beta` is set).
    pub mi: bool,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            kl: KlEstimator::Auto,
            k: 5,
            beta: None,
            mc_draws: 4,
            w1: W1Estimator::Exact,
            exact_max_per_class: 1000,
            sinkhorn_epsilon: 0.01,
            sinkhorn_max_per_class: 5000,
            sinkhorn_iterations: 2000,
            sliced_directions: 128,
            max_points: 2000,
            bootstrap: 30,
            permutations: 99,
            confidence: 0.95,
            ce_clip: 5.0,
            stochastic_layers: Stochastic::Active,
            mi: true,
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
        if let Some(beta) = self.beta {
            if !(beta.is_finite() && beta > 0.0) {
                return Err(("beta", format!("must be finite and > 0, got {beta}")));
            }
        }
        if !(1..=1000).contains(&self.mc_draws) {
            return Err((
                "mc_draws",
                format!("must be in [1, 1000], got {}", self.mc_draws),
            ));
        }
        if !(self.sinkhorn_epsilon.is_finite()
            && self.sinkhorn_epsilon > 0.0
            && self.sinkhorn_epsilon <= 10.0)
        {
            return Err((
                "sinkhorn_epsilon",
                format!(
                    "must be in (0, 10] (relative to the mean distance), got {}",
                    self.sinkhorn_epsilon
                ),
            ));
        }
        if !(2..=1_000_000).contains(&self.sinkhorn_max_per_class) {
            return Err((
                "sinkhorn_max_per_class",
                format!(
                    "must be in [2, 1000000], got {}",
                    self.sinkhorn_max_per_class
                ),
            ));
        }
        if !(1..=1_000_000).contains(&self.sinkhorn_iterations) {
            return Err((
                "sinkhorn_iterations",
                format!("must be in [1, 1000000], got {}", self.sinkhorn_iterations),
            ));
        }
        if matches!(
            self.kl,
            KlEstimator::Knn | KlEstimator::KnnAtoms | KlEstimator::Auto
        ) && self.k + 1 > self.max_points / 2
        {
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
        if self.permutations > 100_000 {
            return Err((
                "permutations",
                format!("at most 100000 permutations, got {}", self.permutations),
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

    /// Estimator names as printed and written, e.g. `knn(k=5)`; `auto` resolves per layer
    /// (see [`crate::divergence::resolve_kl`]) and is named by what it chose.
    pub fn kl_name(&self) -> String {
        match self.kl {
            KlEstimator::Auto => "auto".into(),
            KlEstimator::Knn => format!("knn(k={})", self.k),
            KlEstimator::KnnAtoms => format!("knn_atoms(k={})", self.k),
            KlEstimator::Gaussian => "gaussian".into(),
            KlEstimator::Smoothed => match self.beta {
                Some(b) => format!("smoothed(β={b})"),
                None => "smoothed".into(),
            },
        }
    }

    /// What the chosen W1 estimator's number is.
    pub fn w1_bias(&self) -> Bias {
        match self.w1 {
            W1Estimator::Exact => Bias::Exact,
            W1Estimator::Sinkhorn => Bias::UpperBound,
            W1Estimator::Sliced => Bias::LowerBound,
        }
    }

    pub fn w1_name(&self) -> String {
        match self.w1 {
            W1Estimator::Exact => format!("exact(≤{}/class)", self.exact_max_per_class),
            W1Estimator::Sinkhorn => format!(
                "sinkhorn(ε={}·mean,≤{}/class)",
                self.sinkhorn_epsilon, self.sinkhorn_max_per_class
            ),
            W1Estimator::Sliced => format!("sliced({})", self.sliced_directions),
        }
    }
}
