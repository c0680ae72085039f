//! [`ModelError`]: an invalid model description.

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
