//! `funnel run`: config → data + model → train → measure → results folder, and the table.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use funnel_train::{EvalSettings, TrainError};
use tracing::info;

use crate::backend::BackendArgs;
use crate::error::{io_err, CliError};
use crate::output;
use crate::pipeline::{self, prepare::Prepared, train::Training, Measure};
use crate::results::*;
use crate::term::{say, warn};

/// Arguments of `funnel run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The TOML config of the run.
    pub config: PathBuf,
    /// Results go to OUT/<name>/<run-id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Overrides one config key, e.g. `--set train.epochs=10` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Also write every captured layer (train and test activations, labels, Lipschitz
    /// constants, the config) to `layers.npz` in the run folder: `funnel layers` measures it
    /// again, and numpy reads it (`numpy.load`).
    #[arg(long)]
    pub export_layers: bool,
}

/// The layers file `--export-layers` writes into the run folder.
pub const EXPORT_FILE: &str = "layers.npz";

/// Runs the whole pipeline; returns whether the run succeeded or failed (e.g. diverged).
pub fn run(args: &RunArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let Prepared {
        config,
        config_toml,
        device,
        split,
        mlp,
        capture_train: tr_idx,
        capture_test: te_idx,
        data_s,
        weights,
    } = pipeline::prepare::prepare(&args.config, &args.set, &args.backend)?;
    let seed = config.seed;
    let classes = split.train.num_classes;
    info!(data = %split.info.description, n_train = split.train.len(), n_test = split.test.len(), "data ready");

    let mode = config.metrics.stochastic_layers;
    let clip = config.metrics.ce_clip;
    let run = super::open_run(
        &args.out,
        "funnel",
        &config.name,
        (&config).into(),
        &config_toml,
        &device,
    )?;
    say(format_args!(
        "data: {} — {} train / {} test",
        split.info.description,
        split.train.len(),
        split.test.len()
    ));

    // ---- model and training
    let model = pipeline::train::init(&mlp, &device, seed, weights.as_ref())?;
    let parameters = model.num_params();
    let dims = mlp.dims();
    say(format_args!(
        "model: {} ({}, {} on hidden layers, {} parameters)",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" → "),
        config.model.activation,
        config.model.regularizer.describe(),
        parameters
    ));
    if let Some(w) = &weights {
        say(format_args!(
            "weights: {} ({} tensors){}",
            w.path().display(),
            w.len(),
            if config.train.algorithm == funnel_train::Algorithm::ClassMean {
                ", hidden layers as loaded, read-out from the class-mean rule"
            } else if config.train.epochs == 0 {
                ", measured as loaded (train.epochs = 0)"
            } else {
                ", the initialisation of training"
            }
        ));
    }
    let eval = EvalSettings { mode, clip };
    let Training {
        result: trained,
        history,
        mu_hat,
    } = pipeline::train::fit(model, &config, &split, &device, eval);
    let base_summary = |status, reason, train_s| Summary {
        status,
        reason,
        ..Summary::begin(
            &config.name,
            run.id(),
            seed,
            config.backend.name(),
            crate::backend::device_kind(&device),
            DataSummary {
                kind: config.data.kind().into(),
                description: split.info.description.clone(),
                n_train: split.train.len(),
                n_test: split.test.len(),
                dim: split.train.dim,
                classes,
                standardized: split.info.standardized,
            },
            ModelSummary::of(&config, &dims, parameters),
            TrainingSummary::of(&config, history.len(), train_s),
            Timings {
                data_s,
                train_s,
                total_s: start.elapsed().as_secs_f64(),
                ..Timings::default()
            },
        )
    };
    let trained = match trained {
        Ok(t) => t,
        Err(e @ TrainError::Diverged { .. }) => {
            let reason = e.to_string();
            let train_s = history.last().map_or(0.0, |r| r.seconds);
            let mut summary = base_summary(Status::Failed, Some(reason.clone()), train_s);
            for w in output::files::write_run(&run, &mut summary, Some(&history))? {
                warn(format_args!("{w}"));
            }
            let dir = run
                .finish()
                .map_err(io_err("cannot finish the results folder"))?;
            warn(format_args!("run failed: {reason}"));
            say(format_args!("results (failed run): {}", dir.display()));
            return Ok(Status::Failed);
        }
        Err(e) => return Err(CliError::internal(e.to_string())),
    };
    let model = trained.model;
    let train_s = trained.seconds;
    crate::results::model::save(&run, &model)?;
    if let (Some(last), true) = (history.last(), mu_hat.is_some()) {
        say(format_args!(
            "class-mean rule: random hidden projections, read-out from μ̂ (no gradient steps), {:.1} s: train acc {:.3}, test acc {:.3}",
            train_s,
            last.train.accuracy(),
            last.test.accuracy()
        ));
    } else if let Some(last) = history.last() {
        say(format_args!(
            "trained {} epochs ({}, lr {}) in {:.1} s: train acc {:.3}, test acc {:.3}",
            history.len(),
            config.train.algorithm.name(),
            config.train.lr,
            train_s,
            last.train.accuracy(),
            last.test.accuracy()
        ));
    }

    let mut summary = base_summary(Status::Ok, None, train_s);
    if let (Some(mu_hat), Some(means), Some(s)) =
        (&mu_hat, &split.info.class_means, split.info.noise_std)
    {
        summary.linear_gaussian = Some(pipeline::train::linear_gaussian(
            &model,
            &means[1],
            mu_hat,
            s,
            split.train.len(),
        ));
    }
    let measure = Measure {
        config: &config,
        device: &device,
        model: &model,
        train: &split.train,
        test: &split.test,
        capture_train: &tr_idx,
        capture_test: &te_idx,
        start,
        export: args.export_layers,
    };
    let (summary, file) = pipeline::measure::measure(measure, summary);
    if let Some(mut file) = file {
        file.config = Some(config_toml.clone());
        run.write(EXPORT_FILE, &crate::results::layers_npz::write(&file))
            .map_err(io_err("cannot write layers.npz"))?;
    }
    super::write_and_print(run, summary, (&config).into(), Some(&history))
}
