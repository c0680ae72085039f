//! Every input of a run checked before the first byte is written: config, backend, data,
//! model size, and enough captured points per class for the estimators. Errors here are bad
//! input (exit 2).

use std::path::Path;
use std::time::Instant;

use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::cloud::{class_indices, stratified_subsample};
use funnel_metrics::kl::gaussian_min_points;
use funnel_metrics::{KlEstimator, MetricsSpec};
use funnel_model::{MlpConfig, Regularizer};
use funnel_train::{DataError, Dataset, Split};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::BackendArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::results::model::Weights;

/// Largest network funnel trains: 2²⁸ parameters (1 GiB of f32 weights, ~4 GiB with Adam).
const MAX_PARAMETERS: usize = 1 << 28;
/// Most values the probe may hold (captured points × total width of all layers): 2³⁰ f32.
const MAX_CAPTURED: usize = 1 << 30;
/// Largest per-batch DropConnect mask (kept for the backward pass): 2²⁸ values.
const MAX_DROPCONNECT: usize = 1 << 28;

/// Everything known to be good before the first byte is written.
pub struct Prepared {
    pub config: Config,
    pub config_toml: String,
    pub device: Device,
    pub split: Split,
    pub mlp: MlpConfig,
    /// The examples whose layers are captured (class-stratified subsamples of each split).
    pub capture_train: Vec<usize>,
    pub capture_test: Vec<usize>,
    pub data_s: f64,
    /// `model.weights`, read and checked against `mlp`.
    pub weights: Option<Weights>,
}

/// Points per class and side the KL estimator needs for its value, its null baseline (halves of
/// the test cloud) and its half-sample interval.
pub fn points_needed(metrics: &MetricsSpec) -> usize {
    match metrics.kl {
        KlEstimator::Knn | KlEstimator::KnnAtoms | KlEstimator::Auto => 2 * (metrics.k + 1),
        KlEstimator::Gaussian | KlEstimator::Smoothed => 2 * gaussian_min_points(1),
    }
}

/// Loads and checks every input: config, backend, data, model size, and whether each class
/// has enough captured points for the estimators. Errors are bad input (exit 2).
pub fn prepare(
    config_path: &Path,
    set: &[String],
    backend: &BackendArgs,
) -> Result<Prepared, CliError> {
    let file = config_path.display();
    let bad = |key: &str, msg: String| CliError::input(format!("{file}: `{key}`: {msg}"));
    let mut config = Config::load(config_path, set).map_err(|e| CliError::input(e.to_string()))?;
    let choice = backend.resolve(config.backend, config.device);
    config.backend = choice.name;
    config.device = choice.index;
    let device = choice.device().map_err(CliError::input)?;
    let seed = config.seed;
    let t = Instant::now();
    let split = config
        .data
        .load(derive_seed(seed, "data"))
        .map_err(|e| match e {
            DataError::Invalid { key, message } => bad(&format!("data.{key}"), message),
            file_error => CliError::input(file_error.to_string()),
        })?;
    let data_s = t.elapsed().as_secs_f64();
    let classes = split.train.num_classes;
    let mlp = config.model.mlp(split.train.dim, classes);
    mlp.validate()
        .map_err(|e| bad(&format!("model.{}", e.field), e.message))?;

    // model size
    let dims = mlp.dims();
    let parameters = dims.windows(2).try_fold(0usize, |acc, w| {
        w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
    });
    if parameters.is_none_or(|p| p > MAX_PARAMETERS) {
        return Err(bad(
            "model.widths",
            format!(
                "the network {} has more than {MAX_PARAMETERS} parameters (1 GiB of weights); use smaller widths",
                dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" → ")
            ),
        ));
    }
    if let Regularizer::DropConnect { .. } = config.model.regularizer {
        for (l, w) in dims
            .windows(2)
            .enumerate()
            .take(dims.len().saturating_sub(2))
        {
            let values = w[0]
                .saturating_mul(w[1])
                .saturating_mul(config.train.batch_size);
            if values > MAX_DROPCONNECT {
                return Err(bad(
                    "train.batch_size",
                    format!(
                        "DropConnect keeps one weight mask per example for the backward pass: batch_size·d_in·d_out = {}·{}·{} values at layer {} exceed {MAX_DROPCONNECT}; lower train.batch_size or the widths",
                        config.train.batch_size,
                        w[0],
                        w[1],
                        l + 1
                    ),
                ));
            }
        }
    }

    let weights = match &config.model.weights {
        Some(path) => Some(Weights::read(path, &mlp).map_err(|m| bad("model.weights", m))?),
        None => None,
    };

    let (capture_train, capture_test) = capture_subsets(
        &config,
        &split.train,
        &split.test,
        split.info.class_values.as_deref(),
        &file.to_string(),
    )?;
    let config_toml = config.to_toml().map_err(CliError::input)?;
    Ok(Prepared {
        config,
        config_toml,
        device,
        split,
        mlp,
        capture_train,
        capture_test,
        data_s,
        weights,
    })
}

/// The examples whose layers are captured — a class-stratified subsample of `train`, then one
/// of `test`, from the seed's `subsample` stream (so a run and a later `funnel measure` draw the
/// same ones) — checked for memory and for enough points per class for the estimators. `file`
/// (the config, or the file that gave `test`) starts the messages.
/// `class_values`: the label each class stands for in a data file, for the messages.
pub fn capture_subsets(
    config: &Config,
    train: &Dataset,
    test: &Dataset,
    class_values: Option<&[i64]>,
    file: &str,
) -> Result<(Vec<usize>, Vec<usize>), CliError> {
    let bad = |key: &str, msg: String| CliError::input(format!("{file}: `{key}`: {msg}"));
    let classes = train.num_classes;
    let dims = config.model.mlp(train.dim, classes).dims();
    // the captured points, and enough of them per class for value, null and half-samples
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, "subsample"));
    let max = config.metrics.max_points;
    let capture_train = stratified_subsample(&train.y, classes, max, &mut rng);
    let capture_test = stratified_subsample(&test.y, classes, max, &mut rng);
    let captured = (capture_train.len() + capture_test.len()).saturating_mul(dims.iter().sum());
    if captured > MAX_CAPTURED {
        return Err(bad(
            "metrics.max_points",
            format!(
                "capturing {} + {} points through layers of total width {} holds {captured} values; at most {MAX_CAPTURED} (4 GiB): lower metrics.max_points",
                capture_train.len(),
                capture_test.len(),
                dims.iter().sum::<usize>()
            ),
        ));
    }
    let metrics = &config.metrics;
    // the smoothed KL needs a noise std on every layer: the model's own noise (measured with
    // stochastic layers active) covers only its hidden layers
    let noisy = matches!(config.model.regularizer, Regularizer::GaussianNoise { std } if std > 0.0)
        && metrics.stochastic_layers.is_active();
    if metrics.kl == KlEstimator::Smoothed && metrics.beta.is_none() {
        return Err(bad(
            "metrics.kl",
            if noisy {
                "`smoothed` on every layer needs metrics.beta for the input and logits layers, which carry no noise of their own; set metrics.beta, or use kl = \"auto\" (smoothed on the noisy layers only)".into()
            } else {
                "`smoothed` needs a noise std: the model has no active gaussian_noise regularizer, so set metrics.beta".into()
            },
        ));
    }
    let need = points_needed(metrics);
    let count = |idx: &[usize], y: &[usize]| {
        let labels: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        class_indices(&labels, classes)
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>()
    };
    let (ntr, nte) = (
        count(&capture_train, &train.y),
        count(&capture_test, &test.y),
    );
    // file data: name the label as written in the file
    let class_name = |c: usize| match class_values.and_then(|v| v.get(c)) {
        Some(v) => format!("class {c} (label {v} in the data)"),
        None => format!("class {c}"),
    };
    for c in 0..classes {
        if ntr[c] == 0 {
            continue; // absent from training: weight 0 in every divergence
        }
        if nte[c] == 0 {
            return Err(CliError::input(format!(
                "{file}: {} has {} training example(s) but none in the test set: every train/test divergence is infinite",
                class_name(c),
                ntr[c]
            )));
        }
        let all = |y: &[usize]| y.iter().filter(|&&v| v == c).count();
        if nte[c] < need && nte[c] == all(&test.y) {
            return Err(CliError::input(format!(
                "{file}: {} has only {} example(s) in the test set; the {} estimator needs at least {need} per class and side (for its null baseline and interval)",
                class_name(c),
                nte[c],
                metrics.kl_name()
            )));
        }
        if ntr[c].min(nte[c]) < need {
            return Err(bad(
                "metrics.max_points",
                format!(
                    "class {c} has {} training and {} test points among those captured; the {} estimator needs at least {need} per class and side (for its null baseline and interval): raise metrics.max_points{}",
                    ntr[c],
                    nte[c],
                    metrics.kl_name(),
                    if matches!(metrics.kl, KlEstimator::Knn | KlEstimator::KnnAtoms | KlEstimator::Auto) { " or lower metrics.k" } else { "" }
                ),
            ));
        }
    }
    Ok((capture_train, capture_test))
}
