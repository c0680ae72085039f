//! Data sets, training loops, losses and the measured generalization gap for funnel: this crate
//! owns everything from a data description to a trained model and its train/test losses (the
//! exact Gibbs enumeration lives in `funnel-gibbs`, the measurement in `funnel-metrics`).
//!
//! * [`data`] — the paper's binary Gaussian mixture, a multi-class Gaussian, CSV and IDX files;
//!   seeded generation, subsampling and splitting; standardization fitted on the training split.
//! * [`train()`] — mini-batch training with burn's SGD (momentum) and Adam, or SGLD
//!   ([`sgld_step`]), on an autodiff device, evaluating both splits after every epoch.
//! * [`eval`] — cross-entropy, clipped cross-entropy and 0-1 loss, and the gap test − train.
//! * [`class_mean`] — the class-mean rule and its closed forms; [`readout`] — the expected
//!   divergence of its data-dependent read-out (a 2-D quadrature).
//! * [`nan_if_null`] — reads back the NaN that `serde_json` wrote as `null`.

pub mod class_mean;
pub mod data;
pub mod eval;
mod nan;
pub mod readout;
mod train;

pub use data::{DataError, DataInfo, DataSpec, Dataset, Split};
pub use eval::{evaluate, Gap, Losses};
pub use nan::nan_if_null;
pub use train::{
    cross_entropy, sgld_step, step_once, train, Algorithm, EpochRecord, EvalSettings, TrainError,
    TrainSpec, Trained,
};
