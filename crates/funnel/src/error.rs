//! How a command fails: an [`anyhow::Error`] with its cause chain, and the kind that decides
//! the exit code (2 bad input, 1 internal, 130 interrupted). Printed as `error: a: b: c`, the
//! outermost context first.

use std::fmt;

/// What kind of failure, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad config, data or argument: exit 2, nothing written.
    Input,
    /// Anything else: exit 1.
    Internal,
    /// Ctrl-C / SIGTERM: exit 130 after the finished work was written (see `interrupt`).
    Interrupted,
}

/// A command's error: its kind and the error with its causes.
#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    pub error: anyhow::Error,
}

impl CliError {
    fn new(kind: Kind, message: impl fmt::Display) -> Self {
        CliError {
            kind,
            error: anyhow::anyhow!("{message}"),
        }
    }

    /// Bad input (exit 2).
    pub fn input(message: impl fmt::Display) -> Self {
        Self::new(Kind::Input, message)
    }

    /// Anything but bad input (exit 1).
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// Stopped by a signal after writing what was finished (exit 130).
    pub fn interrupted(message: impl fmt::Display) -> Self {
        Self::new(Kind::Interrupted, message)
    }

    /// An internal error caused by `cause`, with `what` as its context.
    pub fn caused(kind: Kind, what: impl fmt::Display, cause: impl Into<anyhow::Error>) -> Self {
        CliError {
            kind,
            error: cause.into().context(what.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    /// The whole chain, `context: cause: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Maps an I/O error to an internal error whose context says what failed.
pub fn io_err(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::caused(Kind::Internal, what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_keeps_the_cause_chain() {
        let e = io_err("cannot write summary.json")(std::io::Error::other("disk full"));
        assert_eq!(e.kind, Kind::Internal);
        assert_eq!(e.to_string(), "cannot write summary.json: disk full");
        assert_eq!(e.error.chain().count(), 2);
        assert_eq!(CliError::input("bad key").to_string(), "bad key");
    }
}
