//! Measurement for funnel: the probe that captures every layer, divergence estimators with
//! calibration, Lipschitz constants, and the layer-wise bounds.
//!
//! * [`probe::capture`] — every layer of a [`funnel_model::LayeredModel`] on a split, as
//!   labelled point clouds.
//! * [`kl`] — `gaussian` (closed form on fitted Gaussians) and `knn` (Wang–Kulkarni–Verdú).
//! * [`w1`] — `exact` (optimal assignment, [`assignment`]), `sliced`, and exact 1-D W1.
//! * [`divergence::layer_divergence`] — class-conditional KL and W1 of one layer with a
//!   size-matched permutation null, p-value, excess and interval ([`calibrate`]).
//! * [`lipschitz`] — spectral norms by power iteration, ρ_l per layer.
//! * [`bounds`] — Holm resolution over layers, the KL and W1 bounds from simultaneous upper
//!   ends, and the funnel layer.
//!
//! Heavy kernels (pairwise distances, projections, power iteration) run on the burn backend of
//! the run's `Device`; the assignment solver and exact refinements run on the host in f64.

pub mod assignment;
pub mod atoms;
pub mod bounds;
pub mod calibrate;
pub mod cloud;
pub mod divergence;
pub mod kl;
pub mod knn;
pub mod lipschitz;
pub mod mi;
pub mod probe;
pub mod sinkhorn;
pub mod smoothed;
pub mod span;
mod spec;
pub mod tiles;
pub mod w1;

pub use bounds::{assemble, sdpi_coefficients, Bounds, LayerRow};
pub use cloud::{Cloud, Points};
pub use divergence::{
    layer_divergence, resolve_kl, Bias, Estimate, LayerContext, LayerDivergence, NoisyLayer,
};
pub use spec::{KlEstimator, MetricsSpec, W1Estimator, AUTO_KNN_MAX_RANK};

/// Why an estimator produced no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("{estimator} needs at least {need} points per class and side, found {have}")]
    TooFewPoints {
        estimator: &'static str,
        have: usize,
        need: usize,
    },
    #[error("degenerate cloud: {0}")]
    Degenerate(String),
    #[error("class {class}: {source}")]
    InClass {
        class: usize,
        source: Box<EstimateError>,
    },
}

/// Reads a number that `serde_json` wrote as `null` (it writes NaN and ±∞ so) back as NaN, so
/// that a saved `summary.json` deserializes (`funnel report`).
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}
