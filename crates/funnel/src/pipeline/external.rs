//! A network trained elsewhere, measured from its layers file (`funnel layers`): the file's
//! layers become clouds (class-stratified subsamples of at most `metrics.max_points` per split,
//! as a run captures), then the same estimation and conclusion as a run
//! ([`super::layers::divergences`], [`super::layers::conclude`]). Computes only.

use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::cloud::{class_indices, stratified_subsample};
use funnel_metrics::{Cloud, LayerContext, MetricsSpec};
use funnel_model::{Activation, LayerInfo, LayerRole, Regularizer};
use funnel_train::Losses;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::CliError;
use crate::results::layers_npz::{FileLayer, LayerFile};
use crate::results::Summary;

use super::layers::{conclude, divergences, Conclusion, LayerInput};
use super::prepare::points_needed;

/// The measurement settings of a layers file: what a run's config would give.
pub struct Settings<'a> {
    pub metrics: &'a MetricsSpec,
    pub seed: u64,
}

/// The activation a file names, when funnel knows it (`relu`, `tanh`, `identity`, …).
fn known_activation(name: &str) -> Option<Activation> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// Checks that every class with points has enough on both sides for the estimators; the
/// error names the file, the class and the counts.
fn check_points(
    file: &str,
    train: &[usize],
    test: &[usize],
    classes: usize,
    need: usize,
) -> Result<(), CliError> {
    let tr = class_indices(train, classes);
    let te = class_indices(test, classes);
    for c in 0..classes {
        let (a, b) = (tr[c].len(), te[c].len());
        if (a > 0 || b > 0) && (a < need || b < need) {
            return Err(CliError::input(format!(
                "{file}: class {c} has {a} train and {b} test examples (after metrics.max_points); the estimators need at least {need} per class and side"
            )));
        }
    }
    Ok(())
}

/// Mean cross-entropy, clipped cross-entropy and 0-1 loss of a split from the file's
/// per-example losses (NaN for what the file does not give).
fn losses(loss: Option<&[f64]>, error: Option<&[f64]>, clip: f64) -> Losses {
    let mean = |v: Option<&[f64]>, f: &dyn Fn(f64) -> f64| {
        v.filter(|v| !v.is_empty()).map_or(f64::NAN, |v| {
            v.iter().map(|&x| f(x)).sum::<f64>() / v.len() as f64
        })
    };
    Losses {
        cross_entropy: mean(loss, &|x| x),
        cross_entropy_clipped: mean(loss, &|x| x.min(clip)),
        zero_one: mean(error, &|x| x),
        n: loss.or(error).map_or(0, <[f64]>::len),
    }
}

/// The examples measured: class-stratified subsamples of at most `metrics.max_points` per
/// split, the same for every layer, checked to leave enough points per class and side.
pub struct Selection {
    train: Vec<usize>,
    test: Vec<usize>,
}

/// Draws and checks the [`Selection`] before anything is written; `path` names the file.
pub fn select(path: &str, file: &LayerFile, settings: &Settings) -> Result<Selection, CliError> {
    let metrics = settings.metrics;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(settings.seed, "subsample"));
    let train = stratified_subsample(
        &file.train_labels,
        file.classes,
        metrics.max_points,
        &mut rng,
    );
    let test = stratified_subsample(
        &file.test_labels,
        file.classes,
        metrics.max_points,
        &mut rng,
    );
    let labels =
        |idx: &[usize], all: &[usize]| -> Vec<usize> { idx.iter().map(|&i| all[i]).collect() };
    check_points(
        path,
        &labels(&train, &file.train_labels),
        &labels(&test, &file.test_labels),
        file.classes,
        points_needed(metrics),
    )?;
    Ok(Selection { train, test })
}

/// Measures every layer of `file` on the examples `selection` chose into `summary` (data, model
/// and training sections filled in by the caller).
pub fn measure(
    file: &LayerFile,
    selection: &Selection,
    settings: Settings,
    device: &Device,
    mut summary: Summary,
) -> Summary {
    let metrics = settings.metrics;
    let classes = file.classes;
    let (tr_idx, te_idx) = (&selection.train, &selection.test);
    let tr_labels: Vec<usize> = tr_idx.iter().map(|&i| file.train_labels[i]).collect();
    let te_labels: Vec<usize> = te_idx.iter().map(|&i| file.test_labels[i]).collect();
    let clouds: Vec<(Cloud, Cloud)> = file
        .layers
        .iter()
        .map(|l| {
            (
                Cloud::new(l.train.select(tr_idx), tr_labels.clone(), classes),
                Cloud::new(l.test.select(te_idx), te_labels.clone(), classes),
            )
        })
        .collect();
    let last = file.layers.len() - 1;
    let infos: Vec<LayerInfo> = file
        .layers
        .iter()
        .enumerate()
        .map(|(l, fl)| LayerInfo {
            index: l,
            width: fl.train.d,
            role: match fl.role.as_deref() {
                Some("input") => LayerRole::Input,
                Some("logits") => LayerRole::Logits,
                Some(_) => LayerRole::Hidden,
                None if l == 0 && fl.name == "input" => LayerRole::Input,
                None if l == last => LayerRole::Logits,
                None => LayerRole::Hidden,
            },
            activation: fl
                .activation
                .as_deref()
                .and_then(known_activation)
                .unwrap_or(Activation::Identity),
            regularizer: Regularizer::None,
        })
        .collect();
    let inputs: Vec<LayerInput> = clouds
        .iter()
        .zip(&file.layers)
        .map(|((tr, te), fl)| LayerInput {
            train: tr,
            test: te,
            context: LayerContext {
                noise: None,
                // a layer of unknown activation is treated as non-linear: its clouds are not
                // Gaussian, so `auto` keeps kNN there
                nonlinear: fl
                    .activation
                    .as_deref()
                    .and_then(known_activation)
                    .is_none_or(|a| a != Activation::Identity),
                masked: fl.masked,
                // set for every layer at once by `layers::divergences`
                halves: None,
            },
            xt: None,
        })
        .collect();
    let divs = divergences(&inputs, metrics, device, settings.seed);
    let rho: Vec<f64> = file
        .layers
        .iter()
        .map(|l| l.lipschitz.unwrap_or(f64::NAN))
        .collect();
    let rho_local: Vec<f64> = file
        .layers
        .iter()
        .map(|l| l.lipschitz_local.unwrap_or(f64::NAN))
        .collect();
    // the certified constants a run's export stores; NaN for a network known only by its
    // layers (no weights to compute them from)
    let stored = |f: fn(&FileLayer) -> Option<f64>| -> Vec<f64> {
        file.layers
            .iter()
            .map(|l| f(l).unwrap_or(f64::NAN))
            .collect()
    };
    let (rho_cp, rho_box, rho_cert) = (
        stored(|l| l.lipschitz_cp),
        stored(|l| l.lipschitz_box),
        stored(|l| l.lipschitz_cert),
    );
    let clip = metrics.ce_clip;
    let known = file.train_loss.is_some() || file.train_error.is_some();
    let losses = (known && (file.test_loss.is_some() || file.test_error.is_some())).then(|| {
        (
            losses(
                file.train_loss.as_deref(),
                file.train_error.as_deref(),
                clip,
            ),
            losses(file.test_loss.as_deref(), file.test_error.as_deref(), clip),
        )
    });
    let stochastic = if file.layers.iter().any(|l| l.masked) {
        "as the file was captured (masked layers marked)"
    } else {
        "as the file was captured"
    };
    conclude(
        &mut summary,
        Conclusion {
            layers: &infos,
            divergences: divs,
            rho: &rho,
            rho_local: &rho_local,
            rho_cp: &rho_cp,
            rho_box: &rho_box,
            rho_cert: &rho_cert,
            metrics,
            mode: metrics.stochastic_layers,
            losses,
            stochastic,
            points: (tr_idx.len(), te_idx.len()),
        },
    );
    // what the file says about each layer, in its own words; a layer of unknown activation was
    // treated as non-linear, and says why
    for (row, fl) in summary.layers.iter_mut().zip(&file.layers) {
        row.name.clone_from(&fl.name);
        row.activation = fl.activation.clone().unwrap_or_else(|| "unknown".into());
        row.regularizer = fl.regularizer.clone().unwrap_or_else(|| "unknown".into());
        if fl
            .activation
            .as_deref()
            .and_then(known_activation)
            .is_none()
            && row.kl_why == "non-linear: not Gaussian"
        {
            row.kl_why = "activation unknown: not assumed Gaussian".into();
        }
    }
    if let Some(m) = summary.measurement.as_mut() {
        m.kl_estimator = crate::output::table::kl_estimators(&summary.layers);
    }
    summary
}
