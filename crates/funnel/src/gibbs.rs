//! `funnel gibbs`: the Gibbs algorithm's generalization gap, computed exactly by enumeration
//! for a tiny quantized network, against n (DESIGN §2.8; the estimator lives in
//! `funnel_gibbs`).

use std::path::PathBuf;

use funnel_gibbs::{self as gibbs, GibbsError, GibbsResults, GibbsSpec};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::plots;
use crate::report::{num, Status};
use crate::results::RunDir;
use crate::run::{io_err, say};
use crate::CliError;

/// Arguments of `funnel gibbs`.
#[derive(Debug, Clone, clap::Args)]
pub struct GibbsArgs {
    /// The TOML file: `name` and a `[gibbs]` table (every key has a default).
    pub config: PathBuf,
    /// Results go to OUT/<name>/<run-id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// The file `funnel gibbs` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GibbsFile {
    pub name: String,
    #[serde(default)]
    pub gibbs: GibbsSpec,
}

/// `summary.json` of a Gibbs run.
#[derive(Serialize)]
struct GibbsSummary<'a> {
    name: &'a str,
    run_id: &'a str,
    funnel_version: &'static str,
    created: String,
    spec: &'a GibbsSpec,
    seconds: f64,
    #[serde(flatten)]
    results: &'a GibbsResults,
}

/// Reads and checks the file; errors name the file and the key.
pub fn load(path: &std::path::Path) -> Result<GibbsFile, CliError> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {file}: {e}")))?;
    let de = toml::de::Deserializer::parse(&text)
        .map_err(|e| CliError::Input(format!("{file}: {}", e.message().trim())))?;
    let parsed: GibbsFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        CliError::Input(format!(
            "{file}: `{key}`: {}",
            e.into_inner().message().trim()
        ))
    })?;
    if !crate::config::valid_name(&parsed.name) {
        return Err(CliError::Input(format!(
            "{file}: `name`: `{}` must be 1–100 letters, digits, `.`, `_` or `-`, not starting with `.` (it names a folder)",
            parsed.name
        )));
    }
    parsed.gibbs.validate().map_err(|e| match e {
        GibbsError::Invalid { .. } => CliError::Input(format!("{file}: {e}")),
    })?;
    Ok(parsed)
}

fn rows_csv(r: &GibbsResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in &r.rows {
        w.serialize(row).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

fn fits_csv(r: &GibbsResults) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["gamma", "slope", "slope_stderr", "points_used"])
        .expect("in memory");
    for f in &r.fits {
        let used: Vec<String> = f.points_used.iter().map(|n| n.to_string()).collect();
        w.write_record([
            f.gamma.to_string(),
            f.slope.to_string(),
            f.slope_stderr.to_string(),
            used.join(" "),
        ])
        .expect("in memory");
    }
    w.into_inner().expect("in memory")
}

fn markdown(name: &str, id: &str, spec: &GibbsSpec, r: &GibbsResults) -> String {
    let mut s = format!("# funnel gibbs `{name}` — {id}\n\n");
    s.push_str(&format!(
        "Exact Gibbs posterior P(w|S) ∝ exp(−γ·L_S(w)) over all {} weight vectors of a {}→{}→1 tanh network \
         (no biases, P = {} weights in {{{}}}), 0-1 loss; population = uniform on a pool of {} points of the \
         binary Gaussian mixture (d = {}, ‖μ‖ = {}, s = {}), so population risks are exact; {} training sets per (γ, n). \
         Smallest population risk in the weight set: {}.\n\n",
        r.configs,
        spec.dim,
        spec.hidden,
        r.params,
        spec.levels
            .iter()
            .map(|v| num(*v))
            .collect::<Vec<_>>()
            .join(", "),
        spec.pool,
        spec.dim,
        num(spec.mean_norm),
        num(spec.noise_std),
        spec.train_sets,
        num(r.population_bayes_risk)
    ));
    s.push_str("| γ | n | E gap (control variate) ± se | E gap (plain mean) ± se | train loss | population risk | √2·γ/n | finite-parameter bound | effective configs |\n|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} ± {} | {} ± {} | {} | {} | {} | {} | {} |\n",
            num(row.gamma),
            row.n,
            num(row.gap_cv_mean),
            num(row.gap_cv_stderr),
            num(row.gap_mean),
            num(row.gap_stderr),
            num(row.train_loss),
            num(row.test_loss),
            num(row.bound_gibbs),
            num(row.bound_finite),
            num(row.effective_configs)
        ));
    }
    s.push_str("\n## Rate\n\n| γ | fitted slope of ln E gap on ln n | ± se | n used |\n|---|---|---|---|\n");
    for f in &r.fits {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            num(f.gamma),
            num(f.slope),
            num(f.slope_stderr),
            f.points_used
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(
        "\nThe theory (DESIGN §2.8): |E gap| ≤ √2·γ/n for the Gibbs algorithm (slope −1), and ≤ sqrt(Πη·P·ln K/(2n)) \
         for any algorithm on this finite weight set (slope −½). The fit uses the control-variate estimate and only \
         the n whose gap is resolved from 0 (> 2 se).\n\n![E gap against n](plots/gibbs_rate.svg)\n",
    );
    s
}

/// Runs the enumeration and writes `config.toml`, `gibbs.csv`, `fits.csv`, `summary.json`,
/// `report.md` and `plots/gibbs_rate.{png,svg}`.
pub fn gibbs(args: &GibbsArgs) -> Result<Status, CliError> {
    let start = std::time::Instant::now();
    let file = load(&args.config)?;
    let spec = &file.gibbs;
    let resolved = toml::to_string_pretty(&file)
        .map_err(|e| CliError::Internal(format!("cannot write the resolved config: {e}")))?;
    let run = RunDir::create(&args.out, &file.name, spec.seed)
        .map_err(io_err("cannot create the results folder"))?;
    run.write("config.toml", resolved.as_bytes())
        .map_err(io_err("cannot write config.toml"))?;
    say(format_args!(
        "funnel gibbs · {} · run {} · {}→{}→1 network, {} levels, {} weight vectors",
        file.name,
        run.id(),
        spec.dim,
        spec.hidden,
        spec.levels.len(),
        (spec.levels.len() as f64).powi(spec.params() as i32)
    ));
    let pb = ProgressBar::new(1);
    pb.set_style(
        ProgressStyle::with_template(
            "enumerating {bar:30} {pos}/{len} cells [{elapsed_precise}<{eta_precise}]",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let results = gibbs::run(spec, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .map_err(|e| CliError::Input(format!("{}: {e}", args.config.display())))?;
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    run.write("gibbs.csv", &rows_csv(&results))
        .map_err(io_err("cannot write gibbs.csv"))?;
    run.write("fits.csv", &fits_csv(&results))
        .map_err(io_err("cannot write fits.csv"))?;
    let summary = GibbsSummary {
        name: &file.name,
        run_id: run.id(),
        funnel_version: env!("CARGO_PKG_VERSION"),
        created: chrono::Utc::now().to_rfc3339(),
        spec,
        seconds,
        results: &results,
    };
    let json =
        serde_json::to_vec_pretty(&summary).map_err(|e| CliError::Internal(e.to_string()))?;
    run.write("summary.json", &json)
        .map_err(io_err("cannot write summary.json"))?;
    match plots::gibbs_figure(&results) {
        Ok(fig) => {
            for (path, bytes) in fig.files() {
                run.write(&path, bytes)
                    .map_err(io_err("cannot write the figure"))?;
            }
        }
        Err(e) => eprintln!("warning: the figure could not be drawn: {e}"),
    }
    run.write(
        "report.md",
        markdown(&file.name, run.id(), spec, &results).as_bytes(),
    )
    .map_err(io_err("cannot write report.md"))?;
    let dir = run
        .finish()
        .map_err(io_err("cannot finish the results folder"))?;
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
