//! `funnel run`: config → data + model → train → probe → estimates → bounds → results folder.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::module::Module;
use funnel_metrics::cloud::stratified_subsample;
use funnel_metrics::lipschitz::lipschitz_constants;
use funnel_metrics::probe::capture;
use funnel_metrics::{assemble, layer_divergence, Bias, W1Estimator};
use funnel_model::{derive_seed, LayeredModel, Stochastic};
use funnel_train::{evaluate, train, DataError, EpochRecord, EvalSettings, Gap, TrainError};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::info;

use crate::backend::BackendName;
use crate::config::Config;
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
    /// Overrides the config's `backend`.
    #[arg(long, value_enum)]
    pub backend: Option<BackendName>,
    /// Overrides one config key, e.g. `--set train.epochs=10` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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

fn io_err(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Internal(format!("{what}: {e}"))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs the whole pipeline; returns whether the run succeeded or failed (e.g. diverged).
pub fn run(args: &RunArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let mut config =
        Config::load(&args.config, &args.set).map_err(|e| CliError::Input(e.to_string()))?;
    if let Some(b) = args.backend {
        config.backend = b;
    }
    let device = config.backend.device().map_err(CliError::Input)?;
    let seed = config.seed;

    // ---- data (nothing is written before the inputs are known to be good)
    let t = Instant::now();
    let split = config
        .data
        .load(derive_seed(seed, "data"))
        .map_err(|e| match e {
            DataError::Invalid { key, message } => CliError::Input(format!(
                "{}: `data.{key}`: {message}",
                args.config.display()
            )),
            file => CliError::Input(file.to_string()),
        })?;
    let data_s = secs(t.elapsed());
    let classes = split.train.num_classes;
    let mlp = config.model.mlp(split.train.dim, classes);
    mlp.validate().map_err(|e| {
        CliError::Input(format!(
            "{}: `model.{}`: {}",
            args.config.display(),
            e.field,
            e.message
        ))
    })?;
    info!(data = %split.info.description, n_train = split.train.len(), n_test = split.test.len(), "data ready");

    // ---- results folder
    let run = RunDir::create(&args.out, &config.name, seed)
        .map_err(io_err("cannot create the results folder"))?;
    run.write("config.toml", config.to_toml().as_bytes())
        .map_err(io_err("cannot write config.toml"))?;
    let mode = config.metrics.stochastic_layers;
    let clip = config.metrics.ce_clip;

    println!(
        "funnel · {} · run {} · backend {} · seed {}",
        config.name,
        run.id(),
        config.backend.name(),
        seed
    );
    println!(
        "data: {} — {} train / {} test",
        split.info.description,
        split.train.len(),
        split.test.len()
    );

    // ---- model and training
    let ad = device.clone().autodiff();
    device.seed(derive_seed(seed, "init"));
    let model = mlp
        .init(&ad)
        .map_err(|e| CliError::Internal(e.to_string()))?;
    let parameters = model.num_params();
    let dims: Vec<usize> = model.layers().iter().map(|l| l.width).collect();
    println!(
        "model: {} ({}, {} on hidden layers, {} parameters)",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" → "),
        config.model.activation,
        config.model.regularizer.describe(),
        parameters
    );
    device.seed(derive_seed(seed, "train"));
    let pb = bar(
        config.train.epochs as u64,
        "training {bar:30} {pos}/{len} epochs {msg} [{elapsed_precise}<{eta_precise}]",
    );
    let mut history: Vec<EpochRecord> = Vec::new();
    let eval = EvalSettings { mode, clip };
    let trained = train(
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
                train_acc = r.train.accuracy(),
                test_acc = r.test.accuracy(),
                "epoch"
            );
            history.push(r.clone());
        },
    );
    pb.finish_and_clear();
    let base_summary = |status, reason, train_s| Summary {
        status,
        reason,
        name: config.name.clone(),
        run_id: run.id().to_string(),
        seed,
        backend: config.backend.name().into(),
        funnel_version: env!("CARGO_PKG_VERSION").into(),
        created: chrono::Utc::now().to_rfc3339(),
        data: DataSummary {
            kind: config.data.kind().into(),
            description: split.info.description.clone(),
            n_train: split.train.len(),
            n_test: split.test.len(),
            dim: split.train.dim,
            classes,
            standardized: split.info.standardized,
        },
        model: ModelSummary {
            dims: dims.clone(),
            depth: dims.len() - 1,
            activation: config.model.activation.name().into(),
            regularizer: config.model.regularizer.describe(),
            parameters,
        },
        training: TrainingSummary {
            algorithm: config.train.algorithm.name().into(),
            lr: config.train.lr,
            epochs: config.train.epochs,
            epochs_run: history.len(),
            batch_size: config.train.batch_size,
            seconds: train_s,
        },
        losses: None,
        gap: None,
        funnel_layer: None,
        bounds: None,
        measurement: None,
        layers: Vec::new(),
        timings: Timings {
            data_s,
            train_s,
            total_s: secs(start.elapsed()),
            ..Timings::default()
        },
    };
    let trained = match trained {
        Ok(t) => t,
        Err(e @ TrainError::Diverged { .. }) => {
            let reason = e.to_string();
            eprintln!("run failed: {reason}");
            let train_s = history.last().map_or(0.0, |r| r.seconds);
            let summary = base_summary(Status::Failed, Some(reason), train_s);
            write_run(&run, &summary, &history)?;
            let dir = run
                .finish()
                .map_err(io_err("cannot finish the results folder"))?;
            println!("results (failed run): {}", dir.display());
            return Ok(Status::Failed);
        }
        Err(e) => return Err(CliError::Internal(e.to_string())),
    };
    let model = trained.model;
    let train_s = trained.seconds;
    if let Some(last) = history.last() {
        println!(
            "trained {} epochs ({}, lr {}) in {:.1} s: train acc {:.3}, test acc {:.3}",
            history.len(),
            config.train.algorithm.name(),
            config.train.lr,
            train_s,
            last.train.accuracy(),
            last.test.accuracy()
        );
    }

    // ---- losses and the measured gap, in the measurement mode
    let t = Instant::now();
    device.seed(derive_seed(seed, "evaluate"));
    let train_losses = evaluate(&model, &split.train, &device, mode, clip);
    let test_losses = evaluate(&model, &split.test, &device, mode, clip);
    let gap = Gap::between(&train_losses, &test_losses);
    let evaluate_s = secs(t.elapsed());
    info!(
        zero_one = gap.zero_one,
        cross_entropy = gap.cross_entropy,
        "measured gap"
    );

    // ---- capture every layer on (stratified subsamples of) both splits
    let t = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "subsample"));
    let max = config.metrics.max_points;
    let tr_idx = stratified_subsample(&split.train.y, classes, max, &mut rng);
    let te_idx = stratified_subsample(&split.test.y, classes, max, &mut rng);
    let tr_labels: Vec<usize> = tr_idx.iter().map(|&i| split.train.y[i]).collect();
    let te_labels: Vec<usize> = te_idx.iter().map(|&i| split.test.y[i]).collect();
    device.seed(derive_seed(seed, "capture"));
    let tr_clouds = capture(
        &model,
        split.train.features_of(&tr_idx, &device),
        &tr_labels,
        classes,
        mode,
    );
    let te_clouds = capture(
        &model,
        split.test.features_of(&te_idx, &device),
        &te_labels,
        classes,
        mode,
    );
    let capture_s = secs(t.elapsed());
    info!(
        points_train = tr_idx.len(),
        points_test = te_idx.len(),
        layers = tr_clouds.len(),
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
        divergences.push(layer_divergence(
            tr,
            te,
            &config.metrics,
            &device,
            derive_seed(seed, &format!("layer-{l}")),
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let rho = lipschitz_constants(&model, mode, derive_seed(seed, "lipschitz"));
    let bounds = assemble(&layers, divergences, &rho, clip);
    let estimate_s = secs(t.elapsed());

    let kl_best = bounds.kl_best_layer;
    let funnel = bounds.funnel_layer;
    let at = |l: Option<usize>, f: fn(&funnel_metrics::LayerRow) -> f64| {
        l.map_or(f64::NAN, |l| f(&bounds.rows[l]))
    };
    let kl01 = at(kl_best, |r| r.kl_bound);
    let w1b = at(funnel, |r| r.w1_bound);
    let mut summary = base_summary(Status::Ok, None, train_s);
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
        },
        w1: W1BoundSummary {
            layer: funnel,
            cross_entropy: w1b,
            ratio_cross_entropy: report::ratio(w1b, gap.cross_entropy),
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
        kl_estimator: config.metrics.kl_name(),
        w1_estimator: config.metrics.w1_name(),
        w1_bias: match config.metrics.w1 {
            W1Estimator::Exact => Bias::Exact,
            W1Estimator::Sliced => Bias::LowerBound,
        },
        bootstrap: config.metrics.bootstrap,
        confidence: config.metrics.confidence,
        ce_clip: clip,
        null_baseline: "same estimator between two class-stratified halves of the test cloud"
            .into(),
    });
    summary.layers = bounds.rows;
    summary.timings = Timings {
        data_s,
        train_s,
        evaluate_s,
        capture_s,
        estimate_s,
        total_s: secs(start.elapsed()),
    };

    // ---- print and write
    println!(
        "measurement: stochastic layers: {}; KL {}; W1 {}; {} train / {} test points per layer; CI from {} half-samples",
        summary.measurement.as_ref().map_or("", |m| m.stochastic_layers.as_str()),
        config.metrics.kl_name(),
        config.metrics.w1_name(),
        tr_idx.len(),
        te_idx.len(),
        config.metrics.bootstrap
    );
    println!();
    print!(
        "{}",
        report::table(&summary.layers, config.metrics.confidence)
    );
    println!();
    println!(
        "measured gap (test − train): 0-1 {} · cross-entropy {} · cross-entropy clipped at {} {}",
        num(gap.zero_one),
        num(gap.cross_entropy),
        num(clip),
        num(gap.cross_entropy_clipped)
    );
    for line in report::findings(&summary) {
        println!("· {line}");
    }
    write_run(&run, &summary, &history)?;
    let dir = run
        .finish()
        .map_err(io_err("cannot finish the results folder"))?;
    println!("results: {}", dir.display());
    Ok(Status::Ok)
}

/// Writes every file of the run except `config.toml` (written first).
fn write_run(run: &RunDir, summary: &Summary, history: &[EpochRecord]) -> Result<(), CliError> {
    run.write("training.csv", &results::training_csv(history))
        .map_err(io_err("cannot write training.csv"))?;
    if !summary.layers.is_empty() {
        run.write("layers.csv", &results::layers_csv(&summary.layers))
            .map_err(io_err("cannot write layers.csv"))?;
    }
    let json = serde_json::to_vec_pretty(summary).map_err(|e| CliError::Internal(e.to_string()))?;
    run.write("summary.json", &json)
        .map_err(io_err("cannot write summary.json"))?;
    run.write("report.md", report::markdown(summary).as_bytes())
        .map_err(io_err("cannot write report.md"))?;
    Ok(())
}
