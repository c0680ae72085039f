//! `funnel layers FILE.npz`: every layer of a network trained elsewhere (its train and test
//! activations, from `python/funnel_export.py` or `funnel run --export-layers`), measured as
//! `funnel run` measures its own: the table, `layers.csv`, `summary.json`, `report.md` and the
//! figures, with the file's layer names.

use std::path::PathBuf;
use std::time::Instant;

use funnel_metrics::MetricsSpec;
use serde::Deserialize;

use crate::backend::{BackendArgs, BackendName};
use crate::config::{apply_override, parse_toml, valid_name};
use crate::error::CliError;
use crate::pipeline::external;
use crate::results::layers_npz;
use crate::results::*;
use crate::term::say;

/// Arguments of `funnel layers`.
#[derive(Debug, Clone, clap::Args)]
pub struct LayersArgs {
    /// The layers file (`.npz`): `train/<layer>`, `test/<layer>`, `train_labels`, `test_labels`
    /// and optional losses and Lipschitz constants (python/README.md has the format).
    pub file: PathBuf,
    /// Results go to OUT/<name>/<run-id>/ (the name: the file's own config, else its stem).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// A TOML file with the measurement settings: `name`, `seed`, `backend` and a `[metrics]`
    /// table as in a run's config (a whole run config is accepted; its data, model and train
    /// tables are ignored). Default: the config the file carries, if any, else the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides one setting, e.g. `--set metrics.kl="knn"` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// The settings `funnel layers` takes from a config: the rest of a run's config is ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayersConfig {
    name: Option<String>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    backend: BackendName,
    device: Option<usize>,
    #[serde(default)]
    metrics: MetricsSpec,
}

/// The settings from `text` (a config's TOML, `what` names it) with the overrides applied.
fn settings(text: &str, what: &str, set: &[String]) -> Result<LayersConfig, CliError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| CliError::input(format!("{what}: {}", e.message().trim())))?;
    for section in ["data", "model", "train"] {
        table.remove(section);
    }
    for arg in set {
        apply_override(&mut table, arg).map_err(CliError::input)?;
    }
    let text = toml::to_string(&table).map_err(CliError::internal)?;
    let parsed: LayersConfig =
        parse_toml(&text, std::path::Path::new(what), &[]).map_err(CliError::input)?;
    parsed
        .metrics
        .validate()
        .map_err(|(key, msg)| CliError::input(format!("{what}: `metrics.{key}`: {msg}")))?;
    Ok(parsed)
}

pub fn layers(args: &LayersArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let path = args.file.display().to_string();
    let file = layers_npz::read(&args.file).map_err(CliError::input)?;
    let (text, what) = match &args.config {
        Some(c) => (
            std::fs::read_to_string(c)
                .map_err(|e| CliError::input(format!("cannot read {}: {e}", c.display())))?,
            c.display().to_string(),
        ),
        None => (
            file.config.clone().unwrap_or_default(),
            format!("{path} (its config)"),
        ),
    };
    let cfg = settings(&text, &what, &args.set)?;
    let name = match cfg.name {
        Some(n) => format!("{n}-layers"),
        None => args
            .file
            .file_stem()
            .map_or("layers".into(), |s| s.to_string_lossy().into_owned()),
    };
    if !valid_name(&name) {
        return Err(CliError::input(format!(
            "`name`: `{name}` must be 1–100 letters, digits, `.`, `_` or `-` (it names a folder); set one with --set name=…"
        )));
    }
    let choice = args.backend.resolve(cfg.backend, cfg.device);
    let device = choice.device().map_err(CliError::input)?;
    // the settings as a run config would freeze them, for config.toml
    let frozen = format!(
        "name = {name:?}\nseed = {}\nbackend = {:?}\n\n[metrics]\n{}",
        cfg.seed,
        choice.name.name(),
        toml::to_string(&cfg.metrics).map_err(CliError::internal)?
    );
    let settings = super::Settings {
        seed: cfg.seed,
        backend: choice.name,
        metrics: &cfg.metrics,
    };

    let measured = external::Settings {
        metrics: &cfg.metrics,
        seed: cfg.seed,
    };
    // every check before the results folder exists
    let selection = external::select(&path, &file, &measured)?;
    let widths: Vec<usize> = file.layers.iter().map(|l| l.train.d).collect();
    let run = super::open_run(
        &args.out,
        "funnel layers",
        &name,
        settings,
        &frozen,
        &device,
    )?;
    say(format_args!(
        "layers: {} of {} ({}) — {} train / {} test examples, {} classes",
        file.layers.len(),
        path,
        file.layers
            .iter()
            .map(|l| format!("{} {}", l.name, l.train.d))
            .collect::<Vec<_>>()
            .join(", "),
        file.train_labels.len(),
        file.test_labels.len(),
        file.classes
    ));
    let mut summary = Summary {
        layers_file: Some(std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone())),
        ..Summary::begin(
            &name,
            run.id(),
            cfg.seed,
            choice.name.name(),
            crate::backend::device_kind(&device),
            DataSummary {
                kind: "layers file".into(),
                description: format!("activations from {path}"),
                n_train: file.train_labels.len(),
                n_test: file.test_labels.len(),
                dim: widths[0],
                classes: file.classes,
                standardized: false,
            },
            ModelSummary {
                dims: widths.clone(),
                depth: widths.len() - 1,
                activation: "from the file".into(),
                regularizer: "unknown".into(),
                parameters: 0,
            },
            TrainingSummary {
                algorithm: "elsewhere".into(),
                lr: f64::NAN,
                epochs: 0,
                epochs_run: 0,
                batch_size: 0,
                seconds: f64::NAN,
            },
            Timings::default(),
        )
    };
    let t = Instant::now();
    summary = external::measure(&file, &selection, measured, &device, summary);
    summary.timings = Timings {
        estimate_s: t.elapsed().as_secs_f64(),
        total_s: start.elapsed().as_secs_f64(),
        ..summary.timings
    };
    super::write_and_print(run, summary, settings, None)
}
