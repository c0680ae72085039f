//! `funnel devices`: the backends this binary has and the devices each can reach.

use crate::backend;
use crate::error::CliError;
use crate::results::Status;
use crate::term::say;

pub fn devices() -> Result<Status, CliError> {
    for line in backend::describe() {
        say(format_args!("{line}"));
    }
    Ok(Status::Ok)
}
