//! The subcommands, one module each: they parse their arguments, call the pipeline, the
//! study runner or the output writers, and print. Only this folder and `term` write to the
//! terminal.

pub mod devices;
pub mod estimate;
pub mod gibbs;
pub mod layers;
pub mod measure;
pub mod merge;
pub mod report;
pub mod run;
pub mod selftest;
pub mod sweep;

use funnel_train::EpochRecord;

use crate::config::Config;
use crate::error::{io_err, CliError};
use crate::output;
use crate::results::{RunDir, Status, Summary};
use crate::term::{say, warn};
use crate::text::num;

/// The subcommands of `funnel`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Train a network from a config, capture every layer on the training and the test set,
    /// estimate per-layer KL and W1 with null baselines and CIs, and write the bounds.
    Run(run::RunArgs),
    /// Estimate KL(P‖Q) and W1(P, Q) between two point clouds in files (CSV or .npy), each
    /// with its null baseline and confidence interval.
    Estimate(estimate::EstimateArgs),
    /// Measure every layer of a network trained elsewhere from its layers file (`.npz`: every
    /// layer's train and test activations, e.g. from python/funnel_export.py), as `run` does.
    Layers(layers::LayersArgs),
    /// Measure every layer of a finished run's saved model against another labelled data set
    /// (shifted or production data), without retraining; writes a results folder like `run`.
    Measure(measure::MeasureArgs),
    /// Check every estimator against closed forms (Gaussian pairs, shifted Gaussians, 1-D
    /// pairs, uniform boxes) and exit 3 when one leaves its documented tolerance.
    Selftest(selftest::SelftestArgs),
    /// Run a study: a base config, axes over config keys and seeds; every cell a `funnel run`
    /// child process, resumable and shardable; writes summary.csv, aggregate.csv, rankings.csv.
    Sweep(sweep::SweepArgs),
    /// The Gibbs algorithm's expected generalization gap against n, computed exactly by
    /// enumerating every weight vector of a tiny quantized network (the O(1/n) rate).
    Gibbs(gibbs::GibbsArgs),
    /// Combine sweep folders of one study (e.g. its shards) into one, with the aggregate files.
    Merge(merge::MergeArgs),
    /// Regenerate `report.md` and the figures (`plots/`) of a finished run from its
    /// `summary.json`, or the figures of a sweep folder from its `summary.csv`, without
    /// rerunning anything.
    Report(report::ReportArgs),
    /// List the backends this binary was built with and the devices each can use
    /// (`--device N` counts wgpu adapters in this order).
    Devices,
}

/// Runs one subcommand.
pub fn dispatch(command: &Command) -> Result<Status, CliError> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Estimate(args) => estimate::estimate(args),
        Command::Measure(args) => measure::measure(args),
        Command::Layers(args) => layers::layers(args),
        Command::Selftest(args) => selftest::selftest(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Merge(args) => merge::merge(args),
        Command::Gibbs(args) => gibbs::gibbs(args),
        Command::Report(args) => report::report(args),
        Command::Devices => devices::devices(),
    }
}

/// What the shared ends of `run`, `measure` and `layers` need of the settings.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    pub seed: u64,
    pub backend: crate::backend::BackendName,
    pub metrics: &'a funnel_metrics::MetricsSpec,
}

impl<'a> From<&'a Config> for Settings<'a> {
    fn from(c: &'a Config) -> Self {
        Settings {
            seed: c.seed,
            backend: c.backend,
            metrics: &c.metrics,
        }
    }
}

/// The results folder of a run or measurement (staged: removed again if anything fails before
/// it is finished) with its `config.toml`, and the header line naming it, the backend, the
/// device and the seed.
fn open_run(
    out: &std::path::Path,
    command: &str,
    name: &str,
    config: Settings,
    config_toml: &str,
    device: &burn::prelude::Device,
) -> Result<RunDir, CliError> {
    let run = RunDir::create(out, name, config.seed)
        .map_err(io_err("cannot create the results folder"))?;
    run.write("config.toml", config_toml.as_bytes())
        .map_err(io_err("cannot write config.toml"))?;
    say(format_args!(
        "{command} · {name} · run {} · backend {} ({}) · seed {}",
        run.id(),
        config.backend.name(),
        crate::backend::device_kind(device),
        config.seed
    ));
    Ok(run)
}

/// The end shared by `funnel run` and `funnel measure`: every file into `run` (then finished),
/// and the measurement line, the table, the gap, the reasons and findings on stdout.
fn write_and_print(
    run: RunDir,
    mut summary: Summary,
    config: Settings,
    history: Option<&[EpochRecord]>,
) -> Result<Status, CliError> {
    for w in output::files::write_run(&run, &mut summary, history)? {
        warn(format_args!("{w}"));
    }
    let dir = run
        .finish()
        .map_err(io_err("cannot finish the results folder"))?;
    say(format_args!(
        "measurement: stochastic layers: {}; KL {}; W1 {}{}; {} train / {} test points per layer; interval se from {} half-samples; size-matched permutation null ({} permutations)",
        summary.measurement.as_ref().map_or("", |m| m.stochastic_layers.as_str()),
        summary
            .measurement
            .as_ref()
            .map_or(String::new(), |m| m.kl_estimator.clone()),
        config.metrics.w1_name(),
        // every other kernel runs on the chosen backend; the assignment solver is sequential
        if config.metrics.w1 == funnel_metrics::W1Estimator::Exact && !config.backend.is_cpu() {
            format!(" (the assignment runs on the CPU, not on {})", config.backend.name())
        } else {
            String::new()
        },
        summary.measurement.as_ref().map_or(0, |m| m.points_train),
        summary.measurement.as_ref().map_or(0, |m| m.points_test),
        config.metrics.bootstrap,
        config.metrics.permutations
    ));
    // unequal splits: say what the estimates really used
    if let (Some(m), Some(first)) = (&summary.measurement, summary.layers.first()) {
        if m.points_train != m.points_test {
            say(format_args!(
                "  the splits differ in size: KL used {} train / {} test points and W1 {} / {} (kNN KL at equal sizes per class, the larger side subsampled once, seeded; exact W1 at min(n_train, n_test, metrics.exact_max_per_class) per class); the other {} points are not used",
                first.kl.points_train,
                first.kl.points_test,
                first.w1.points_train,
                first.w1.points_test,
                (m.points_train + m.points_test)
                    .saturating_sub(first.kl.points_train + first.kl.points_test)
            ));
        }
    }
    say(format_args!(""));
    say(format_args!(
        "{}",
        output::table::table(&summary.layers, config.metrics.confidence)
    ));
    if let Some(t) = output::table::lipschitz_table(&summary.layers) {
        say(format_args!("{t}"));
    }
    if let Some(gap) = &summary.gap {
        say(format_args!(
            "measured gap (test − train): 0-1 {} · cross-entropy {} · cross-entropy clipped at {} {}",
            num(gap.zero_one),
            num(gap.cross_entropy),
            num(config.metrics.ce_clip),
            num(gap.cross_entropy_clipped)
        ));
    }
    for line in output::table::missing_reasons(&summary.layers) {
        say(format_args!("— {line}"));
    }
    for line in output::findings::findings(&summary) {
        say(format_args!("· {line}"));
    }
    if let Some(reason) = &summary.reason {
        warn(format_args!("run failed: {reason}"));
    }
    say(format_args!("results: {}", dir.display()));
    Ok(summary.status)
}
