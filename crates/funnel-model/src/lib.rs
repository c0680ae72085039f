//! Layered burn models for funnel: this crate owns the networks, their layer-wise capture hook
//! and their stochastic layers (seeds and other burn-free helpers live in `funnel-core`).
//!
//! * [`Mlp`] — linear (`identity`) and non-linear multi-layer perceptrons built from an
//!   [`MlpConfig`], with optional stochastic hidden layers ([`Regularizer`]).
//! * [`LayeredModel`] — the hook point: `forward_layers` returns **every** layer, index 0 the
//!   input and index L the logits, so a probe can capture train and test representations.
//! * [`ModelError`] — an invalid model description; [`to_f32_vec`] — a tensor read back to
//!   the host.
//!
//! burn 0.22 has no backend generics: tensors live on a run-time `Device`, which the caller
//! chooses (and seeds) once.

mod activation;
mod error;
mod host;
mod layered;
mod mlp;
mod regularizer;

pub use activation::Activation;
pub use error::ModelError;
pub use host::to_f32_vec;
pub use layered::{LayerInfo, LayerRole, LayeredModel};
pub use mlp::{force_init, Mlp, MlpConfig};
pub use regularizer::{Regularizer, Stochastic};
