//! `funnel report DIR`: regenerates `report.md` and the figures of a finished run from its
//! `summary.json`, or the figures of a sweep from its `summary.csv`, without rerunning
//! anything. The text comes from the same [`report::markdown`] as the run's, so a regenerated
//! `report.md` equals the original.

use std::path::{Path, PathBuf};

use crate::plots::{self, Figure};
use crate::report::{self, Status, Summary};
use crate::results::write_atomic;
use crate::run::{io_err, say};
use crate::CliError;

/// Arguments of `funnel report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A run folder (with `summary.json`) or a sweep folder (with `summary.csv`).
    pub dir: PathBuf,
}

pub fn report(args: &ReportArgs) -> Result<Status, CliError> {
    let dir = &args.dir;
    if dir.join("summary.json").is_file() {
        regenerate_run(dir)
    } else if dir.join("summary.csv").is_file() {
        regenerate_sweep(dir)
    } else {
        Err(CliError::Input(format!(
            "{}: neither a funnel run folder (summary.json) nor a sweep folder (summary.csv)",
            dir.display()
        )))
    }
}

fn write_figures(dir: &Path, figures: &[Figure]) -> Result<(), CliError> {
    for fig in figures {
        for (path, bytes) in fig.files() {
            write_atomic(&dir.join(&path), bytes)
                .map_err(io_err(&format!("cannot write {path}")))?;
            say(format_args!("wrote {}", dir.join(&path).display()));
        }
    }
    Ok(())
}

/// Reads a run's `summary.json`.
pub fn read_summary(dir: &Path) -> Result<Summary, CliError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

fn regenerate_run(dir: &Path) -> Result<Status, CliError> {
    let mut summary = read_summary(dir)?;
    // the figures are drawn anew; a saved note about figures that failed before is replaced
    summary.plots_error = None;
    let figures = plots::run_figures(&summary).unwrap_or_else(|e| {
        eprintln!("warning: the figures could not be drawn: {e}");
        summary.plots_error = Some(e);
        Vec::new()
    });
    write_figures(dir, &figures)?;
    let md = dir.join("report.md");
    write_atomic(&md, report::markdown(&summary).as_bytes())
        .map_err(io_err("cannot write report.md"))?;
    say(format_args!("wrote {}", md.display()));
    Ok(Status::Ok)
}

fn regenerate_sweep(dir: &Path) -> Result<Status, CliError> {
    let path = dir.join("summary.csv");
    let bytes =
        std::fs::read(&path).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let title = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let specs = crate::sweep::figure_specs(dir)?;
    let figures = if specs.is_empty() {
        plots::sweep_figures(&bytes, &title)
    } else {
        plots::study_figures(&bytes, &specs, &title)
    }
    .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    write_figures(dir, &figures)?;
    Ok(Status::Ok)
}
