//! Data sets, training loops, losses and the measured generalization gap for funnel.
//!
//! * [`data`] — the paper's binary Gaussian mixture, a multi-class Gaussian, CSV and IDX files;
//!   seeded generation, subsampling and splitting; standardization fitted on the training split.
//! * [`train()`] — mini-batch training with burn's SGD (momentum) and Adam on an autodiff device,
//!   evaluating both splits after every epoch.
//! * [`eval`] — cross-entropy, clipped cross-entropy and 0-1 loss, and the gap test − train.

pub mod class_mean;
pub mod data;
pub mod eval;
mod nan;
mod train;

pub use data::{DataError, DataInfo, DataSpec, Dataset, Split};
pub use eval::{evaluate, Gap, Losses};
pub use nan::nan_if_null;
pub use train::{
    cross_entropy, sgld_step, step_once, train, Algorithm, EpochRecord, EvalSettings, TrainError,
    TrainSpec, Trained,
};
