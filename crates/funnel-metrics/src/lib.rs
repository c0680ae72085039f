//! Measurement for funnel: the probe that captures every layer, divergence estimators with
//! calibration, Lipschitz constants, and the layer-wise bounds. This crate owns everything
//! computed from captured layer clouds; training and data live in `funnel-train`.
//!
//! * [`probe::capture`] — every layer of a [`funnel_model::LayeredModel`] on a split, as
//!   labelled point clouds ([`cloud`], [`span`]).
//! * [`kl`] — `gaussian` (closed form on fitted Gaussians) and `knn` (Wang–Kulkarni–Verdú);
//!   [`atoms`] (`knn_atoms`, clouds with atoms and zero patterns) and [`smoothed`] (noisy
//!   layers).
//! * [`w1`] — `exact` (optimal assignment, [`assignment`]), `sliced`, and exact 1-D W1;
//!   [`sinkhorn`] (an upper bound).
//! * [`divergence::layer_divergence`] — class-conditional KL and W1 of one layer with a
//!   size-matched permutation null, p-value, excess and an interval from half-samples
//!   ([`calibrate`]), as an [`Estimate`] ([`estimate`]).
//! * [`mi`] — I(T; Y) and I(X; T) per layer, calibrated the same way.
//! * [`lipschitz`] — spectral norms by power iteration, ρ_l per layer (product of norms), and
//!   the empirical ρ̂_l (largest gradient norm at the data).
//! * [`certified`] — certified constants tighter than the product (f64 SVD on the host):
//!   Combettes–Pesquet over the chain, and CP with slopes bounded by interval propagation of
//!   the data's box.
//! * [`bounds`] — Holm resolution over layers, the KL and W1 bounds from simultaneous upper
//!   ends, and the funnel layer.
//!
//! Heavy kernels (pairwise distances, projections, power iteration) run on the burn backend of
//! the run's `Device`; the assignment solver and exact refinements run on the host in f64.

pub mod assignment;
pub mod atoms;
pub mod bounds;
pub mod calibrate;
pub mod certified;
pub mod cloud;
pub mod contraction;
pub mod divergence;
mod error;
pub mod estimate;
pub mod kl;
pub mod knn;
pub mod lipschitz;
pub mod mi;
mod nan;
pub mod probe;
pub mod sinkhorn;
pub mod smoothed;
pub mod span;
mod spec;
pub mod tiles;
pub mod w1;

pub use bounds::{add_certified, assemble, sdpi_coefficients, Bounds, LayerRow};
pub use cloud::{Cloud, Points};
pub use contraction::{ratio_interval, RatioInterval};
pub use divergence::{layer_divergence, resolve_kl, LayerContext, LayerDivergence, NoisyLayer};
pub use error::EstimateError;
pub use estimate::{Bias, Estimate};
pub use nan::nan_if_null;
pub use spec::{KlEstimator, MetricsSpec, W1Estimator, AUTO_KNN_MAX_RANK};
