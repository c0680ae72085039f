//! The computation of a run, without any printing or file format: inputs loaded and checked
//! ([`prepare`]), the network trained ([`train`]), every layer measured and the bounds
//! assembled into the run's `Summary` ([`measure`]); the same for the layers of a network
//! trained elsewhere ([`external`]), through the shared [`layers`]; and the estimator self-test panel
//! ([`coverage`]).

pub mod coverage;
pub mod external;
pub mod layers;
pub mod measure;
pub mod prepare;
pub mod train;

pub use measure::Measure;
