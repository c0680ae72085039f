//! `funnel report DIR`: regenerates the files of a finished run, Gibbs run or sweep from its
//! recorded results, without rerunning anything: `report.md` and the figures of a run from its
//! `summary.json`; `report.md`, `gibbs.csv`, `fits.csv` and the figure of a `funnel gibbs` run
//! from its `summary.json`; the figures of a sweep from its `summary.csv` (titled with the
//! study's name), and its `rankings.csv` when the folder has one (a committed study may leave
//! it out). The text comes from the same writers as the original's, so the files are
//! reproduced byte for byte.

use std::path::{Path, PathBuf};

use crate::error::{io_err, CliError};
use crate::output;
use crate::plots;
use crate::results::{self, write_atomic, Status};
use crate::term::{say, warn};

/// Arguments of `funnel report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A run folder (with `summary.json`), a `funnel gibbs` folder (with `summary.json` and
    /// `gibbs.csv`) or a sweep folder (with `summary.csv`).
    pub dir: PathBuf,
}

pub fn report(args: &ReportArgs) -> Result<Status, CliError> {
    let dir = &args.dir;
    if dir.join("summary.json").is_file() && dir.join("gibbs.csv").is_file() {
        regenerate_gibbs(dir)
    } else if dir.join("summary.json").is_file() {
        regenerate_run(dir)
    } else if dir.join("summary.csv").is_file() {
        regenerate_sweep(dir)
    } else {
        Err(CliError::input(format!(
            "{}: neither a funnel run folder (summary.json) nor a sweep folder (summary.csv)",
            dir.display()
        )))
    }
}

/// Writes `bytes` to `dir/path` and says so.
fn write(dir: &Path, path: &str, bytes: &[u8]) -> Result<(), CliError> {
    let to = dir.join(path);
    write_atomic(&to, bytes).map_err(io_err(&format!("cannot write {path}")))?;
    say(format_args!("wrote {}", to.display()));
    Ok(())
}

fn write_figures(dir: &Path, figures: &[plots::Figure]) -> Result<(), CliError> {
    output::files::write_figures(figures, |path, bytes| {
        write(dir, path, bytes).map_err(|e| std::io::Error::other(e.to_string()))
    })
    .map_err(|(path, e)| {
        CliError::caused(
            crate::error::Kind::Internal,
            format!("cannot write {path}"),
            e,
        )
    })
}

fn regenerate_run(dir: &Path) -> Result<Status, CliError> {
    let mut summary = results::summary::read(dir)?;
    // the figures are drawn anew; a saved note about figures that failed before is replaced
    summary.plots_error = None;
    let figures = plots::run_figures(&summary).unwrap_or_else(|e| {
        warn(format_args!("warning: the figures could not be drawn: {e}"));
        summary.plots_error = Some(e);
        Vec::new()
    });
    write_figures(dir, &figures)?;
    write(
        dir,
        "report.md",
        output::report_md::markdown(&summary).as_bytes(),
    )?;
    Ok(Status::Ok)
}

fn regenerate_gibbs(dir: &Path) -> Result<Status, CliError> {
    let g = match results::gibbs::read(dir)? {
        results::gibbs::GibbsRun::Single(g) => g,
        results::gibbs::GibbsRun::Budget(g) => return regenerate_gibbs_budget(dir, &g),
    };
    write(dir, "gibbs.csv", &results::gibbs::rows_csv(&g.results))?;
    write(dir, "fits.csv", &results::gibbs::fits_csv(&g.results))?;
    match plots::gibbs_figure(&g.results) {
        Ok(fig) => write_figures(dir, &[fig])?,
        Err(e) => warn(format_args!("warning: the figure could not be drawn: {e}")),
    }
    let md = output::gibbs_md::markdown(&g.name, &g.run_id, &g.spec, &g.results);
    write(dir, "report.md", md.as_bytes())?;
    Ok(Status::Ok)
}

fn regenerate_gibbs_budget(
    dir: &Path,
    g: &results::gibbs::GibbsBudgetSummary,
) -> Result<Status, CliError> {
    write(
        dir,
        "gibbs.csv",
        &results::gibbs::budget_rows_csv(&g.results),
    )?;
    write(
        dir,
        "fits.csv",
        &results::gibbs::budget_fits_csv(&g.results),
    )?;
    match plots::gibbs_budget_figure(&g.results) {
        Ok(fig) => write_figures(dir, &[fig])?,
        Err(e) => warn(format_args!("warning: the figure could not be drawn: {e}")),
    }
    let md = output::gibbs_md::budget_markdown(&g.name, &g.run_id, &g.spec, &g.results);
    write(dir, "report.md", md.as_bytes())?;
    Ok(Status::Ok)
}

fn regenerate_sweep(dir: &Path) -> Result<Status, CliError> {
    let path = dir.join("summary.csv");
    let bytes =
        std::fs::read(&path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let (title, specs) = match crate::sweep::study_of(dir)? {
        Some(study) => study,
        // a bare summary.csv: the folder's name
        None => (
            dir.canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| dir.display().to_string()),
            Vec::new(),
        ),
    };
    let figures = if specs.is_empty() {
        plots::sweep_figures(&bytes, &title)
    } else {
        plots::study_figures(&bytes, &specs, &title)
    }
    .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    write_figures(dir, &figures)?;
    if dir.join("rankings.csv").is_file() {
        let ranked = crate::sweep::rankings::rankings(&bytes)
            .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        write(dir, "rankings.csv", &ranked.csv)?;
    }
    Ok(Status::Ok)
}
