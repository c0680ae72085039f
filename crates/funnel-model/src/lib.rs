//! Layered burn models for funnel.
//!
//! * [`Mlp`] — linear (`identity`) and non-linear multi-layer perceptrons built from an
//!   [`MlpConfig`], with optional stochastic hidden layers ([`Regularizer`]).
//! * [`LayeredModel`] — the hook point: `forward_layers` returns **every** layer, index 0 the
//!   input and index L the logits, so a probe can capture train and test representations.
//!
//! burn 0.22 has no backend generics: tensors live on a run-time `Device`, which the caller
//! chooses (and seeds) once.

mod activation;
mod layered;
mod mlp;
mod regularizer;

pub use activation::Activation;
pub use layered::{LayerInfo, LayerRole, LayeredModel};
pub use mlp::{force_init, Mlp, MlpConfig};
pub use regularizer::{Regularizer, Stochastic};

use burn::tensor::Tensor;

/// An invalid model description; `field` names the offending configuration field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    pub field: &'static str,
    pub message: String,
}

impl ModelError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Reads a float tensor back to the host as `f32`, row-major.
///
/// Panics only when the backend cannot read memory back, which is a broken installation, not
/// bad user input.
pub fn to_f32_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("backend failed to read a float tensor back to the host")
}
