//! [`EstimateError`]: why an estimator produced no value.

/// Why an estimator produced no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("{estimator} needs at least {need} points per class and side, found {have}")]
    TooFewPoints {
        estimator: &'static str,
        have: usize,
        need: usize,
    },
    #[error("degenerate cloud: {0}")]
    Degenerate(String),
    #[error("class {class}: {source}")]
    InClass {
        class: usize,
        source: Box<EstimateError>,
    },
}
