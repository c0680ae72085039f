//! The computation of a run, without any printing or file format: inputs loaded and checked
//! ([`prepare`]), the network trained ([`train`]), every layer measured and the bounds
//! assembled into the run's `Summary` ([`measure`]); and the estimator self-test panel
//! ([`coverage`]).

pub mod coverage;
pub mod measure;
pub mod prepare;
pub mod train;

pub use measure::Measure;
