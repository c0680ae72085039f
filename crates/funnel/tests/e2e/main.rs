//! funnel's end-to-end tests, one test binary (it links once): each module runs the `funnel`
//! binary (or reads the source, `architecture`) the way a user would. Shared helpers live in
//! `common`.
//!
//! The backend equivalence tests need the other backends built in:
//! `cargo test --release --workspace --features funnel/ndarray,funnel/wgpu --test e2e backends::`;
//! `.pt` weights need `--features funnel/pytorch` (`weights::`).

mod architecture;
mod backends;
mod cli;
mod common;
mod estimate_measure;
mod fuzz_corpus;
mod layers;
mod malformed;
mod paper;
mod python_exporter;
mod report;
mod sweep;
mod weights;

#[cfg(unix)]
mod interrupts;
