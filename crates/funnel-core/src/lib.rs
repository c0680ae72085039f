//! The dependency-free leaf of funnel's crates (std only, no burn): the helpers every other crate
//! shares.
//!
//! * [`seed`] — FNV-1a and SplitMix64, and [`derive_seed`]: one reproducible seed per named
//!   random stream of a run.
//! * [`apportion()`] — largest-remainder split of a total over groups (stratified subsamples and
//!   splits by class).

pub mod apportion;
pub mod seed;

pub use apportion::apportion;
pub use seed::{derive_seed, fnv1a, splitmix64};
