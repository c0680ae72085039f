//! `funnel run`: config → data + model → train → probe → estimates → bounds → results folder.
//! The part after training — [`measure_and_write`] — is shared with `funnel measure`.

use std::fmt::Arguments;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::lipschitz::{lipschitz_constants, local_lipschitz_constants};
use funnel_metrics::mi::{input_information, label_information};
use funnel_metrics::probe::capture_with_pre_noise;
use funnel_metrics::{assemble, layer_divergence, LayerContext, LayerRow, NoisyLayer};
use funnel_model::{Activation, LayerInfo, LayeredModel, Mlp, Regularizer, Stochastic};
use funnel_train::class_mean::class_mean;
use funnel_train::{
    evaluate, train, Algorithm, Dataset, EpochRecord, EvalSettings, Gap, TrainError,
};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use crate::backend::BackendArgs;
use crate::plots;
use crate::prepare::{prepare, Prepared};
use crate::report::{self, *};
use crate::results::{self, RunDir};
use crate::CliError;

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
}

/// One line on stdout. Write errors (a closed pipe, e.g. `funnel run … | head`) are ignored:
/// the results folder is what matters, and it is written before the table is printed.
pub fn say(line: Arguments) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb
}

pub fn io_err(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Internal(format!("{what}: {e}"))
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What `summary.json` says the null is.
pub const NULL_BASELINE: &str = "size-matched permutation: within each class the train and test points pooled and reassigned at the sizes the estimate used";

/// The std of the Gaussian noise a layer adds when it is measured, if any.
fn noise_std(info: &LayerInfo, mode: Stochastic) -> Option<f64> {
    match info.regularizer {
        Regularizer::GaussianNoise { std } if std > 0.0 && mode.is_active() => Some(std),
        _ => None,
    }
}

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
    } = prepare(args)?;
    let seed = config.seed;
    let classes = split.train.num_classes;
    info!(data = %split.info.description, n_train = split.train.len(), n_test = split.test.len(), "data ready");

    // ---- results folder (removed again if anything below fails before it is finished)
    let run = RunDir::create(&args.out, &config.name, seed)
        .map_err(io_err("cannot create the results folder"))?;
    run.write("config.toml", config_toml.as_bytes())
        .map_err(io_err("cannot write config.toml"))?;
    let mode = config.metrics.stochastic_layers;
    let clip = config.metrics.ce_clip;
    say(format_args!(
        "funnel · {} · run {} · backend {} ({}) · seed {}",
        config.name,
        run.id(),
        config.backend.name(),
        crate::backend::device_kind(&device),
        seed
    ));
    say(format_args!(
        "data: {} — {} train / {} test",
        split.info.description,
        split.train.len(),
        split.test.len()
    ));

    // ---- model and training
    let ad = device.clone().autodiff();
    device.seed(derive_seed(seed, "init"));
    let model = mlp
        .init(&ad, derive_seed(seed, "init"))
        .map_err(|e| CliError::Internal(e.to_string()))?;
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
    device.seed(derive_seed(seed, "train"));
    let pb = bar(
        config.train.epochs as u64,
        "training {bar:30} {pos}/{len} epochs {msg} [{elapsed_precise}<{eta_precise}]",
    );
    let mut history: Vec<EpochRecord> = Vec::new();
    let eval = EvalSettings { mode, clip };
    let mut mu_hat: Option<Vec<f64>> = None;
    let trained = if config.train.algorithm == Algorithm::ClassMean {
        // no gradient steps: the hidden layers keep their seeded initialisation
        let s = split.info.noise_std.unwrap_or(1.0);
        class_mean(model.valid(), &split, s, &device, eval).map(|(t, m)| {
            history.clone_from(&t.history);
            mu_hat = Some(m);
            t
        })
    } else {
        train(
            model,
            &config.train,
            &split,
            &device,
            derive_seed(seed, "shuffle"),
            eval,
            &mut |r| {
                pb.set_message(format!(
                    "loss {:.4} · train acc {:.3} · test acc {:.3}",
                    r.batch_loss,
                    r.train.accuracy(),
                    r.test.accuracy()
                ));
                pb.inc(1);
                tracing::debug!(
                    epoch = r.epoch,
                    batch_loss = r.batch_loss,
                    test_acc = r.test.accuracy(),
                    "epoch"
                );
                history.push(r.clone());
            },
        )
    };
    pb.finish_and_clear();
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
                total_s: secs(start.elapsed()),
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
            write_run(&run, &mut summary, Some(&history))?;
            let dir = run
                .finish()
                .map_err(io_err("cannot finish the results folder"))?;
            eprintln!("run failed: {reason}");
            say(format_args!("results (failed run): {}", dir.display()));
            return Ok(Status::Failed);
        }
        Err(e) => return Err(CliError::Internal(e.to_string())),
    };
    let model = trained.model;
    let train_s = trained.seconds;
    save_model(&run, &model)?;
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
        summary.linear_gaussian = Some(LinearGaussianSummary::of(
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
    };
    measure_and_write(measure, run, summary, Some(&history))
}

/// The file in a run folder that holds the trained network's parameters (a burn record).
pub const MODEL_FILE: &str = "model.bpk";

/// Writes the trained network into the (still staged) run folder, for `funnel measure`.
fn save_model(run: &RunDir, model: &Mlp) -> Result<(), CliError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| CliError::Internal(format!("cannot serialise the model: {e}")))?;
    run.write(MODEL_FILE, &bytes)
        .map_err(io_err("cannot write the model"))
}

/// What the tail shared by `funnel run` and `funnel measure` measures: a trained network, the
/// training split, a test set, and the examples of each whose layers are captured.
pub struct Measure<'a> {
    pub config: &'a crate::config::Config,
    pub device: &'a Device,
    pub model: &'a Mlp,
    pub train: &'a Dataset,
    pub test: &'a Dataset,
    pub capture_train: &'a [usize],
    pub capture_test: &'a [usize],
    /// When the command started (for `timings.total_s`).
    pub start: Instant,
}

/// The tail of `funnel run`, shared with `funnel measure`: losses and the measured gap, capture
/// of every layer, per-layer KL and W1 with nulls and intervals, Lipschitz constants and
/// bounds; then every file into `run` (finished at the end) and the table on stdout.
/// `summary` arrives with data, model and training filled in; every random stream is derived
/// from the config's seed exactly as in a run, so the same model, data and test set give the
/// same numbers.
pub fn measure_and_write(
    m: Measure<'_>,
    run: RunDir,
    mut summary: Summary,
    history: Option<&[EpochRecord]>,
) -> Result<Status, CliError> {
    let Measure {
        config,
        device,
        model,
        train: train_set,
        test: test_set,
        capture_train: tr_idx,
        capture_test: te_idx,
        start,
    } = m;
    let seed = config.seed;
    let classes = train_set.num_classes;
    let mode = config.metrics.stochastic_layers;
    let clip = config.metrics.ce_clip;

    // ---- losses and the measured gap, in the measurement mode
    let t = Instant::now();
    device.seed(derive_seed(seed, "evaluate"));
    let train_losses = evaluate(model, train_set, device, mode, clip);
    let test_losses = evaluate(model, test_set, device, mode, clip);
    let gap = Gap::between(&train_losses, &test_losses);
    let evaluate_s = secs(t.elapsed());
    info!(
        zero_one = gap.zero_one,
        cross_entropy = gap.cross_entropy,
        "measured gap"
    );

    // ---- capture every layer of the chosen examples
    let t = Instant::now();
    let layers_info = model.layers();
    let tr_labels: Vec<usize> = tr_idx.iter().map(|&i| train_set.y[i]).collect();
    let te_labels: Vec<usize> = te_idx.iter().map(|&i| test_set.y[i]).collect();
    device.seed(derive_seed(seed, "capture"));
    let (tr_clouds, tr_pre) = capture_with_pre_noise(
        model,
        train_set.features_of(tr_idx, device),
        &tr_labels,
        classes,
        mode,
    );
    let (te_clouds, te_pre) = capture_with_pre_noise(
        model,
        test_set.features_of(te_idx, device),
        &te_labels,
        classes,
        mode,
    );
    // I(X; T_l) needs several pre-noise draws of each training example (independent upstream
    // noise): the capture subset again, every example repeated `mc_draws` times in a row
    let metrics = &config.metrics;
    let want_xt = metrics.mi && (tr_pre.iter().any(Option::is_some) || metrics.beta.is_some());
    let group = metrics.mc_draws;
    let xt_centres: Vec<Option<(funnel_metrics::Cloud, f64)>> = if want_xt {
        let rep: Vec<usize> = tr_idx
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, group))
            .collect();
        let rep_labels: Vec<usize> = rep.iter().map(|&i| train_set.y[i]).collect();
        let (outs, pres) = capture_with_pre_noise(
            model,
            train_set.features_of(&rep, device),
            &rep_labels,
            classes,
            mode,
        );
        outs.into_iter()
            .zip(pres)
            .zip(&layers_info)
            .map(|((out, pre), info)| match (pre, noise_std(info, mode)) {
                (Some(pre), Some(std)) => Some((pre, std)),
                _ => metrics.beta.map(|b| (out, b)),
            })
            .collect()
    } else {
        vec![None; tr_clouds.len()]
    };
    let capture_s = secs(t.elapsed());
    info!(
        points_train = tr_idx.len(),
        points_test = te_idx.len(),
        capture_s,
        "layers captured"
    );

    // ---- divergences, Lipschitz constants, bounds
    let t = Instant::now();
    let layers = model.layers();
    let pb = bar(
        layers.len() as u64,
        "estimating {bar:30} {pos}/{len} layers {msg} [{elapsed_precise}]",
    );
    let mut divergences = Vec::with_capacity(layers.len());
    for (l, (tr, te)) in tr_clouds.iter().zip(&te_clouds).enumerate() {
        pb.set_message(format!(
            "layer {l}: {} and {}",
            config.metrics.kl_name(),
            config.metrics.w1_name()
        ));
        let beta = noise_std(&layers[l], mode);
        let noise = match (beta, &tr_pre[l], &te_pre[l]) {
            (Some(beta), Some(train_pre), Some(test_pre)) => Some(NoisyLayer {
                beta,
                train_pre,
                test_pre,
            }),
            _ => None,
        };
        let layer_seed = derive_seed(seed, &format!("layer-{l}"));
        // the input, the logits and identity layers are linear maps of the data
        let nonlinear = layers[l].activation != Activation::Identity;
        // a layer with active Dropout/DropConnect masks, or any layer after one, is a mixture
        // over masks (atoms and exact zeros under Dropout): no Gaussian fit there
        let masked = mode.is_active()
            && layers[..=l].iter().any(|i| {
                matches!(
                    i.regularizer,
                    Regularizer::Dropout { .. } | Regularizer::DropConnect { .. }
                ) && i.regularizer.is_stochastic()
            });
        let context = LayerContext {
            noise,
            nonlinear,
            masked,
        };
        let mut div = layer_divergence(tr, te, &config.metrics, context, device, layer_seed);
        if config.metrics.mi {
            div.mi_ty = Some(label_information(
                tr,
                context,
                &config.metrics,
                device,
                layer_seed,
            ));
            div.mi_xt = xt_centres[l].as_ref().map(|(centres, beta)| {
                input_information(centres, group, *beta, &config.metrics, device, layer_seed)
            });
        }
        info!(
            layer = l,
            rank = div.rank,
            kl = div.kl.value,
            kl_null = div.kl.null,
            kl_s = div.kl.seconds,
            w1 = div.w1.value,
            w1_null = div.w1.null,
            w1_s = div.w1.seconds,
            "layer estimated"
        );
        divergences.push(div);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let rho = lipschitz_constants(model, mode, derive_seed(seed, "lipschitz"));
    // the empirical constants at the captured examples of both splits
    device.seed(derive_seed(seed, "lipschitz-local"));
    let local_of = |set: &Dataset, idx: &[usize]| {
        let labels: Vec<usize> = idx.iter().map(|&i| set.y[i]).collect();
        local_lipschitz_constants(model, set.features_of(idx, device), &labels, mode, device)
    };
    let rho_local: Vec<f64> = local_of(train_set, tr_idx)
        .into_iter()
        .zip(local_of(test_set, te_idx))
        .map(|(a, b)| a.max(b))
        .collect();
    let alpha = 1.0 - config.metrics.confidence;
    let bounds = assemble(&layers, divergences, &rho, &rho_local, clip, mode, alpha);
    let estimate_s = secs(t.elapsed());

    let kl_best = bounds.kl_best_layer;
    let funnel = bounds.funnel_layer;
    let at = |l: Option<usize>, f: fn(&LayerRow) -> f64| l.map_or(f64::NAN, |l| f(&bounds.rows[l]));
    let kl01 = at(kl_best, |r| r.kl_bound);
    let w1b = at(funnel, |r| r.w1_bound);
    // a run in which no layer could be estimated at all has nothing to report
    let nothing = bounds
        .rows
        .iter()
        .all(|r| r.kl.error.is_some() && r.w1.error.is_some());
    let (status, reason) = if nothing {
        let first = bounds.rows[0].kl.error.clone().unwrap_or_default();
        (
            Status::Failed,
            Some(format!("no layer could be estimated: {first}")),
        )
    } else {
        (Status::Ok, None)
    };
    summary.status = status;
    summary.reason = reason;
    summary.losses = Some(LossPair {
        train: train_losses,
        test: test_losses,
    });
    summary.gap = Some(gap);
    summary.funnel_layer = funnel;
    summary.bounds = Some(BoundsSummary {
        kl: KlBoundSummary {
            layer: kl_best,
            zero_one: kl01,
            cross_entropy_clipped: at(kl_best, |r| r.kl_bound_ce),
            ratio_zero_one: report::ratio(kl01, gap.zero_one),
            layer_any: bounds.kl_best_layer_any,
            zero_one_any: at(bounds.kl_best_layer_any, |r| r.kl_bound),
        },
        w1: W1BoundSummary {
            layer: funnel,
            cross_entropy_clipped: w1b,
            ratio_cross_entropy_clipped: report::ratio(w1b, gap.cross_entropy_clipped),
            layer_local: bounds.funnel_layer_local,
            w1_min_layer: bounds.w1_min_layer,
            layer_any: bounds.funnel_layer_any,
            cross_entropy_clipped_any: at(bounds.funnel_layer_any, |r| r.w1_bound),
        },
    });
    summary.measurement = Some(MeasurementSummary {
        stochastic_layers: match mode {
            _ if !config.model.regularizer.is_stochastic() => "none in this model".into(),
            Stochastic::Active => "active".into(),
            Stochastic::Off => "off".into(),
        },
        points_train: tr_idx.len(),
        points_test: te_idx.len(),
        kl_estimator: report::kl_estimators(&bounds.rows),
        w1_estimator: config.metrics.w1_name(),
        w1_bias: config.metrics.w1_bias(),
        bootstrap: config.metrics.bootstrap,
        permutations: config.metrics.permutations,
        confidence: config.metrics.confidence,
        ce_clip: clip,
        null_baseline: NULL_BASELINE.into(),
    });
    summary.layers = bounds.rows;
    summary.timings = Timings {
        evaluate_s,
        capture_s,
        estimate_s,
        total_s: secs(start.elapsed()),
        ..summary.timings
    };

    // ---- write, then print
    write_run(&run, &mut summary, history)?;
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
        tr_idx.len(),
        te_idx.len(),
        config.metrics.bootstrap,
        config.metrics.permutations
    ));
    say(format_args!(""));
    say(format_args!(
        "{}",
        report::table(&summary.layers, config.metrics.confidence)
    ));
    say(format_args!(
        "measured gap (test − train): 0-1 {} · cross-entropy {} · cross-entropy clipped at {} {}",
        num(gap.zero_one),
        num(gap.cross_entropy),
        num(clip),
        num(gap.cross_entropy_clipped)
    ));
    for line in report::missing_reasons(&summary.layers) {
        say(format_args!("— {line}"));
    }
    for line in report::findings(&summary) {
        say(format_args!("· {line}"));
    }
    if let Some(reason) = &summary.reason {
        eprintln!("run failed: {reason}");
    }
    say(format_args!("results: {}", dir.display()));
    Ok(summary.status)
}

/// Writes every file of the run except `config.toml` (written first) and the model;
/// `training.csv` only when there was training. The figures are drawn first: when they cannot
/// be, the reason goes into `summary.json` and `report.md` (`plots_error`) and the run is kept.
fn write_run(
    run: &RunDir,
    summary: &mut Summary,
    history: Option<&[EpochRecord]>,
) -> Result<(), CliError> {
    if let Some(history) = history {
        run.write("training.csv", &results::training_csv(history))
            .map_err(io_err("cannot write training.csv"))?;
    }
    if !summary.layers.is_empty() {
        run.write("layers.csv", &results::layers_csv(&summary.layers))
            .map_err(io_err("cannot write layers.csv"))?;
    }
    let figures = plots::run_figures(summary).unwrap_or_else(|e| {
        eprintln!("warning: the figures could not be drawn: {e}");
        summary.plots_error = Some(e);
        Vec::new()
    });
    for fig in &figures {
        for (path, bytes) in fig.files() {
            if let Err(e) = run.write(&path, bytes) {
                eprintln!("warning: cannot write {path}: {e}");
                summary.plots_error = Some(format!("cannot write {path}: {e}"));
            }
        }
    }
    let json =
        serde_json::to_vec_pretty(&*summary).map_err(|e| CliError::Internal(e.to_string()))?;
    run.write("summary.json", &json)
        .map_err(io_err("cannot write summary.json"))?;
    run.write("report.md", report::markdown(summary).as_bytes())
        .map_err(io_err("cannot write report.md"))?;
    Ok(())
}
