//! The files of a run folder: `training.csv`, `layers.csv`, the figures, `summary.json` and
//! `report.md`. A figure that cannot be drawn or written never loses a run: the reason goes
//! into `summary.json` and `report.md` (`plots_error`) and a warning for the command to print.

use std::io;

use funnel_train::EpochRecord;

use crate::error::{io_err, CliError};
use crate::plots::{self, Figure};
use crate::results::{self, RunDir, Summary};

/// Writes both files (PNG and SVG) of every figure through `write` (a run folder's, or a plain
/// folder's); stops at the first that cannot be written and says which.
pub fn write_figures(
    figures: &[Figure],
    mut write: impl FnMut(&str, &[u8]) -> io::Result<()>,
) -> Result<(), (String, io::Error)> {
    for fig in figures {
        for (path, bytes) in fig.files() {
            write(&path, bytes).map_err(|e| (path.clone(), e))?;
        }
    }
    Ok(())
}

/// Writes every file of the run except `config.toml` (written first) and the model;
/// `training.csv` only when there was training. The figures are drawn first: when they cannot
/// be, the reason goes into `summary.json` and `report.md` (`plots_error`), the run is kept, and
/// the warning is returned for the terminal.
pub fn write_run(
    run: &RunDir,
    summary: &mut Summary,
    history: Option<&[EpochRecord]>,
) -> Result<Vec<String>, CliError> {
    let mut warnings = Vec::new();
    if let Some(history) = history {
        run.write("training.csv", &results::layers_csv::training_csv(history))
            .map_err(io_err("cannot write training.csv"))?;
    }
    if !summary.layers.is_empty() {
        run.write(
            "layers.csv",
            &results::layers_csv::layers_csv(&summary.layers),
        )
        .map_err(io_err("cannot write layers.csv"))?;
    }
    let figures = plots::run_figures(summary).unwrap_or_else(|e| {
        warnings.push(format!("warning: the figures could not be drawn: {e}"));
        summary.plots_error = Some(e);
        Vec::new()
    });
    if let Err((path, e)) = write_figures(&figures, |path, bytes| run.write(path, bytes)) {
        warnings.push(format!("warning: cannot write {path}: {e}"));
        summary.plots_error = Some(format!("cannot write {path}: {e}"));
    }
    run.write(results::summary::FILE, &results::summary::to_json(summary))
        .map_err(io_err("cannot write summary.json"))?;
    run.write("report.md", super::report_md::markdown(summary).as_bytes())
        .map_err(io_err("cannot write report.md"))?;
    Ok(warnings)
}
