//! funnel-metrics' integration tests, one binary: each module was a test file of its own.

mod calibration;
mod certified;
mod closed_forms;
mod common;
mod contraction_ratio;
mod probe_and_lipschitz;
mod transport_and_smoothing;
