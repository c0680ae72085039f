//! `funnel measure`: the saved model of a finished run, measured layer by layer against another
//! labelled data set (shifted or production data) without retraining. The run's config rebuilds
//! the training split exactly (same seed → same split and standardization) and the network,
//! whose parameters come from `model.bpk`; the rest is `funnel run`'s own tail
//! (`pipeline::measure`).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use funnel_core::derive_seed;
use funnel_train::data::LabelColumn;
use funnel_train::DataError;

use crate::backend::BackendArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::pipeline::{self, prepare::capture_subsets, Measure};
use crate::results::model::MODEL_FILE;
use crate::results::{self, *};
use crate::term::say;

/// Arguments of `funnel measure`.
#[derive(Debug, Clone, clap::Args)]
pub struct MeasureArgs {
    /// A finished `funnel run` folder (it holds config.toml and model.bpk).
    pub run_dir: PathBuf,
    /// Labelled CSV to measure against, in place of the run's test set: the training data's
    /// feature columns (for CSV data: the same columns and header as the training file).
    #[arg(long)]
    pub test: PathBuf,
    /// Results go to OUT/<name>-measure/<run-id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Label column of the test file when the run's data is not CSV: a header name or a 0-based
    /// index (negative from the end) [default: the last column].
    #[arg(long, allow_hyphen_values = true)]
    pub label: Option<String>,
    /// Measure on another backend than the run's (the model file is backend-independent).
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `3` → index 3, `-1` → the last column, anything else a header name.
fn label_column(s: &str) -> LabelColumn {
    s.trim()
        .parse::<i64>()
        .map_or_else(|_| LabelColumn::Name(s.to_string()), LabelColumn::Index)
}

/// Measures the run's model against `--test`; writes a results folder like a run's.
pub fn measure(args: &MeasureArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let dir = &args.run_dir;
    let not_run =
        |why: String| CliError::input(format!("{}: not a funnel run folder: {why}", dir.display()));
    let config_path = dir.join("config.toml");
    if !config_path.is_file() {
        return Err(not_run("it has no config.toml".into()));
    }
    let mut config = Config::load(&config_path, &[])
        .map_err(|e| not_run(format!("its config.toml is not a valid config: {e}")))?;
    let model_path = dir.join(MODEL_FILE);
    if !model_path.is_file() {
        return Err(not_run(format!(
            "it has no {MODEL_FILE} (a run whose training failed keeps no model)"
        )));
    }
    let label = args.label.as_deref().map(label_column);
    if label.is_some() {
        if let funnel_train::DataSpec::Csv { .. } = config.data {
            return Err(CliError::input("--label: the run's data is a CSV file, so the test file repeats its columns and label column; drop --label"));
        }
    }
    let choice = args.backend.resolve(config.backend, config.device);
    config.backend = choice.name;
    config.device = choice.index;
    let device = choice.device().map_err(CliError::input)?;
    let seed = config.seed;

    // ---- the run's data, exactly as it was split and standardized, and the new test set
    let t = Instant::now();
    let split = config.data.load(derive_seed(seed, "data")).map_err(|e| {
        CliError::input(format!(
            "{}: cannot reload the run's training data: {e}",
            config_path.display()
        ))
    })?;
    let test = split
        .read_labelled_csv(&args.test, label.as_ref())
        .map_err(|e| match e {
            DataError::Invalid { message, .. } => CliError::input(format!("--label: {message}")),
            file_error => CliError::input(file_error.to_string()),
        })?;
    let data_s = t.elapsed().as_secs_f64();
    let classes = split.train.num_classes;

    // ---- the network, with the run's parameters
    let mlp = config.model.mlp(split.train.dim, classes);
    let bytes = std::fs::read(&model_path)
        .map_err(|e| CliError::input(format!("{}: cannot read: {e}", model_path.display())))?;
    let empty = mlp
        .init(&device, 0)
        .map_err(|e| not_run(format!("config.toml describes no valid network: {e}")))?;
    let model = results::model::load(empty, bytes).map_err(not_run)?;
    let (capture_train, capture_test) = capture_subsets(
        &config,
        &split.train,
        &test,
        split.info.class_values.as_deref(),
        &args.test.display().to_string(),
    )?;
    // what the run recorded, when its summary is readable: its training, and the size of its
    // data, which the config must reload (a data file changed since the run is refused)
    let recorded: Option<Summary> = results::summary::read(dir).ok();
    if let Some(d) = recorded.as_ref().map(|s| &s.data) {
        let then = [d.n_train, d.dim, d.classes].map(|v| Some(v as u64));
        let now = [split.train.len(), split.train.dim, classes].map(|v| Some(v as u64));
        if then.iter().all(Option::is_some) && then != now {
            let show = |v: [Option<u64>; 3]| {
                let v = v.map(|x| x.unwrap_or(0));
                format!(
                    "{} training examples × {} features, {} classes",
                    v[0], v[1], v[2]
                )
            };
            return Err(CliError::input(format!(
                "{}: the run's data reloads as {}, but the run had {}: its data files changed since",
                config_path.display(),
                show(now),
                show(then)
            )));
        }
    }
    let config_toml = std::fs::read_to_string(&config_path)
        .map_err(|e| CliError::input(format!("{}: cannot read: {e}", config_path.display())))?;

    let name = format!("{}-measure", config.name);
    let run = super::open_run(
        &args.out,
        "funnel measure",
        &name,
        (&config).into(),
        &config_toml,
        &device,
    )?;
    let dims = mlp.dims();
    say(format_args!(
        "model: {} of {} ({} parameters), not retrained",
        MODEL_FILE,
        dir.display(),
        model.num_params()
    ));
    say(format_args!(
        "data: {} — {} train (the run's training split) / {} test from {}",
        split.info.description,
        split.train.len(),
        test.len(),
        args.test.display()
    ));
    let source = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let test_file = std::fs::canonicalize(&args.test).unwrap_or_else(|_| args.test.clone());
    let summary = Summary {
        source: Some(SourceSummary {
            run_dir: source,
            test_file: test_file.clone(),
            model_file: MODEL_FILE.into(),
        }),
        ..Summary::begin(
            &name,
            run.id(),
            seed,
            config.backend.name(),
            crate::backend::device_kind(&device),
            DataSummary {
                kind: config.data.kind().into(),
                description: format!(
                    "{}; test set {}",
                    split.info.description,
                    test_file.display()
                ),
                n_train: split.train.len(),
                n_test: test.len(),
                dim: split.train.dim,
                classes,
                standardized: split.info.standardized,
            },
            ModelSummary::of(&config, &dims, model.num_params()),
            TrainingSummary::of(
                &config,
                recorded
                    .as_ref()
                    .map_or(config.train.epochs, |s| s.training.epochs_run),
                recorded.as_ref().map_or(f64::NAN, |s| s.training.seconds),
            ),
            Timings {
                data_s,
                ..Timings::default()
            },
        )
    };
    let measure = Measure {
        config: &config,
        device: &device,
        model: &model,
        train: &split.train,
        test: &test,
        capture_train: &capture_train,
        capture_test: &capture_test,
        start,
        export: false,
    };
    let (summary, _) = pipeline::measure::measure(measure, summary);
    super::write_and_print(run, summary, (&config).into(), None)
}
