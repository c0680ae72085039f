//! `funnel gibbs`: the Gibbs algorithm's generalization gap, computed exactly by enumeration
//! for a tiny quantized network, against n (DESIGN §2.8; the estimator lives in
//! `funnel_gibbs`).

use std::path::PathBuf;

use funnel_gibbs as gibbs;

use crate::config::load_gibbs;
use crate::error::{io_err, CliError};
use crate::output;
use crate::plots;
use crate::results::gibbs::{
    budget_fits_csv, budget_rows_csv, fits_csv, rows_csv, to_json, GibbsBudgetSummary, GibbsSummary,
};
use crate::results::{RunDir, Status};
use crate::term::{bar, say, warn};
use crate::text::num;

/// Arguments of `funnel gibbs`.
#[derive(Debug, Clone, clap::Args)]
pub struct GibbsArgs {
    /// The TOML file: `name` and a `[gibbs]` table (every key has a default).
    pub config: PathBuf,
    /// Results go to OUT/<name>/<run-id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// Runs the enumeration and writes `config.toml`, `gibbs.csv`, `fits.csv`, `summary.json`,
/// `report.md` and `plots/gibbs_rate.{png,svg}` (with `[[gibbs.architecture]]`:
/// `plots/gibbs_budget.{png,svg}` and CSVs with the architecture's columns).
pub fn gibbs(args: &GibbsArgs) -> Result<Status, CliError> {
    let start = std::time::Instant::now();
    let file = load_gibbs(&args.config)?;
    let spec = &file.gibbs;
    let resolved = toml::to_string_pretty(&file)
        .map_err(|e| CliError::internal(format!("cannot write the resolved config: {e}")))?;
    let run = RunDir::create(&args.out, &file.name, spec.seed)
        .map_err(io_err("cannot create the results folder"))?;
    run.write("config.toml", resolved.as_bytes())
        .map_err(io_err("cannot write config.toml"))?;
    if !spec.architecture.is_empty() {
        return budget(args, &file.name, spec, run, start);
    }
    say(format_args!(
        "funnel gibbs · {} · run {} · {}→{}→1 network, {} levels, {} weight vectors",
        file.name,
        run.id(),
        spec.dim,
        spec.hidden(),
        spec.levels.len(),
        (spec.levels.len() as f64).powi(spec.params() as i32)
    ));
    let results = enumerate(args, |progress| gibbs::run(spec, progress))?;
    let seconds = start.elapsed().as_secs_f64();
    run.write("gibbs.csv", &rows_csv(&results))
        .map_err(io_err("cannot write gibbs.csv"))?;
    run.write("fits.csv", &fits_csv(&results))
        .map_err(io_err("cannot write fits.csv"))?;
    let summary = GibbsSummary {
        name: file.name.clone(),
        run_id: run.id().to_string(),
        funnel_version: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339(),
        spec: spec.clone(),
        seconds,
        results,
    };
    let results = &summary.results;
    let report = output::gibbs_md::markdown(&file.name, run.id(), spec, results);
    let dir = finish(
        run,
        &to_json(&summary),
        plots::gibbs_figure(results),
        &report,
    )?;
    for f in &results.fits {
        say(format_args!(
            "γ = {}: E gap ∝ n^{} (± {}) over n = {:?}",
            num(f.gamma),
            num(f.slope),
            num(f.slope_stderr),
            f.points_used
        ));
    }
    say(format_args!(
        "{} cells in {:.1} s; results: {}",
        results.rows.len(),
        seconds,
        dir.display()
    ));
    Ok(Status::Ok)
}

/// `funnel gibbs` for a list of architectures of one parameter budget.
fn budget(
    args: &GibbsArgs,
    name: &str,
    spec: &gibbs::GibbsSpec,
    run: RunDir,
    start: std::time::Instant,
) -> Result<Status, CliError> {
    say(format_args!(
        "funnel gibbs · {} · run {} · {} architectures of P = {} weights, {} levels, {} weight vectors each",
        name,
        run.id(),
        spec.architecture.len(),
        spec.params(),
        spec.levels.len(),
        (spec.levels.len() as f64).powi(spec.params() as i32)
    ));
    let results = enumerate(args, |progress| gibbs::run_architectures(spec, progress))?;
    let seconds = start.elapsed().as_secs_f64();
    run.write("gibbs.csv", &budget_rows_csv(&results))
        .map_err(io_err("cannot write gibbs.csv"))?;
    run.write("fits.csv", &budget_fits_csv(&results))
        .map_err(io_err("cannot write fits.csv"))?;
    let summary = GibbsBudgetSummary {
        name: name.to_string(),
        run_id: run.id().to_string(),
        funnel_version: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339(),
        spec: spec.clone(),
        seconds,
        results,
    };
    let results = &summary.results;
    let report = output::gibbs_md::budget_markdown(name, run.id(), spec, results);
    let dir = finish(
        run,
        &to_json(&summary),
        plots::gibbs_budget_figure(results),
        &report,
    )?;
    for a in &results.architectures {
        let last = a.results.rows.last();
        say(format_args!(
            "{} (L = {}, Πη = {}): at γ = {}, n = {}: E gap {} ± {}, population risk {}",
            a.architecture.label(),
            a.depth,
            num(a.eta_product),
            last.map_or(f64::NAN, |r| r.gamma),
            last.map_or(0, |r| r.n),
            num(last.map_or(f64::NAN, |r| r.gap_cv_mean)),
            num(last.map_or(f64::NAN, |r| r.gap_cv_stderr)),
            num(last.map_or(f64::NAN, |r| r.test_loss)),
        ));
    }
    say(format_args!(
        "{} cells in {:.1} s; results: {}",
        results
            .architectures
            .iter()
            .map(|a| a.results.rows.len())
            .sum::<usize>(),
        seconds,
        dir.display()
    ));
    Ok(Status::Ok)
}

/// Runs an enumeration (`gibbs::run` or `gibbs::run_architectures`) behind a progress bar; an
/// invalid `[gibbs]` table is the config file's error.
fn enumerate<T>(
    args: &GibbsArgs,
    run: impl FnOnce(&mut dyn FnMut(usize, usize)) -> Result<T, gibbs::GibbsError>,
) -> Result<T, CliError> {
    let pb = bar(
        1,
        "enumerating {bar:30} {pos}/{len} cells [{elapsed_precise}<{eta_precise}]",
    );
    let results = run(&mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .map_err(|e| CliError::input(format!("{}: {e}", args.config.display())))?;
    pb.finish_and_clear();
    Ok(results)
}

/// Writes `summary.json`, the figure (a warning if it could not be drawn) and `report.md`,
/// then finishes the run folder; returns its path.
fn finish(
    run: RunDir,
    summary_json: &[u8],
    figure: Result<plots::Figure, String>,
    report: &str,
) -> Result<PathBuf, CliError> {
    run.write("summary.json", summary_json)
        .map_err(io_err("cannot write summary.json"))?;
    match figure {
        Ok(fig) => output::files::write_figures(&[fig], |path, bytes| run.write(path, bytes))
            .map_err(|(path, e)| io_err(&format!("cannot write {path}"))(e))?,
        Err(e) => warn(format_args!("warning: the figure could not be drawn: {e}")),
    }
    run.write("report.md", report.as_bytes())
        .map_err(io_err("cannot write report.md"))?;
    run.finish()
        .map_err(io_err("cannot finish the results folder"))
}
