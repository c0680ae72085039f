//! The terminal: results on stdout ([`say`]), warnings and failures on stderr ([`warn`]),
//! progress bars on stderr ([`bar`]). Only the commands (`cmd/`) and the long computations they
//! call write to the terminal, and only through here.

use std::fmt::Arguments;
use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};

/// One line on stdout. Write errors (a closed pipe, e.g. `funnel run … | head`) are ignored:
/// the results folder is what matters, and it is written before the table is printed.
pub fn say(line: Arguments) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// One line on stderr: a warning, a note, or why a run failed.
pub fn warn(line: Arguments) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A progress bar on stderr with indicatif's `template` (hidden when stderr is not a terminal).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb
}
