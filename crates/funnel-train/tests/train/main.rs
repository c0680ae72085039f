//! funnel-train's integration tests, one binary: each module was a test file of its own.

mod class_mean;
mod common;
mod data;
mod sgld;
mod training;
