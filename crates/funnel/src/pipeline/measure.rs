//! The measurement shared by `funnel run` and `funnel measure`: losses and the measured gap,
//! capture of every layer, per-layer KL and W1 with nulls and intervals, mutual information,
//! Lipschitz constants and bounds — filled into the run's [`Summary`]. Computes only.

use std::time::Instant;

use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::certified::{bounding_box, certified_constants};
use funnel_metrics::lipschitz::{lipschitz_constants, local_lipschitz_constants};
use funnel_metrics::probe::capture_with_pre_noise;
use funnel_metrics::{LayerContext, NoisyLayer};
use funnel_model::{Activation, LayerInfo, LayeredModel, Mlp, Regularizer, Stochastic};
use funnel_train::{evaluate, Dataset, Gap};
use tracing::info;

use crate::results::layers_npz::{FileLayer, LayerFile};
use crate::results::*;

use super::layers::{Conclusion, LayerInput};

/// The std of the Gaussian noise a layer adds when it is measured, if any.
fn noise_std(info: &LayerInfo, mode: Stochastic) -> Option<f64> {
    match info.regularizer {
        Regularizer::GaussianNoise { std } if std > 0.0 && mode.is_active() => Some(std),
        _ => None,
    }
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
    /// Also return every captured layer as a layers file (`funnel run --export-layers`).
    pub export: bool,
}

/// Measures `m` into `summary` (which arrives with data, model and training filled in): every
/// random stream is derived from the config's seed exactly as in a run, so the same model,
/// data and test set give the same numbers. With `export`, also the captured layers as a
/// layers file (without its `config`, which the caller adds).
pub fn measure(m: Measure<'_>, mut summary: Summary) -> (Summary, Option<LayerFile>) {
    let Measure {
        config,
        device,
        model,
        train: train_set,
        test: test_set,
        capture_train: tr_idx,
        capture_test: te_idx,
        start,
        export,
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
    let evaluate_s = t.elapsed().as_secs_f64();
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
    let capture = |set: &Dataset, idx: &[usize], labels: &[usize]| {
        capture_with_pre_noise(model, set.features_of(idx, device), labels, classes, mode)
    };
    let (tr_clouds, tr_pre) = capture(train_set, tr_idx, &tr_labels);
    let (te_clouds, te_pre) = capture(test_set, te_idx, &te_labels);
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
        let (outs, pres) = capture(train_set, &rep, &rep_labels);
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
    let capture_s = t.elapsed().as_secs_f64();
    info!(
        points_train = tr_idx.len(),
        points_test = te_idx.len(),
        capture_s,
        "layers captured"
    );

    // ---- divergences, Lipschitz constants, bounds
    let t = Instant::now();
    let layers = model.layers();
    let inputs: Vec<LayerInput> = tr_clouds
        .iter()
        .zip(&te_clouds)
        .enumerate()
        .map(|(l, (tr, te))| {
            let beta = noise_std(&layers[l], mode);
            let noise = match (beta, &tr_pre[l], &te_pre[l]) {
                (Some(beta), Some(train_pre), Some(test_pre)) => Some(NoisyLayer {
                    beta,
                    train_pre,
                    test_pre,
                }),
                _ => None,
            };
            // a layer with active Dropout/DropConnect masks, or any layer after one, is a
            // mixture over masks (atoms and exact zeros under Dropout): no Gaussian fit there
            let masked = mode.is_active()
                && layers[..=l].iter().any(|i| {
                    matches!(
                        i.regularizer,
                        Regularizer::Dropout { .. } | Regularizer::DropConnect { .. }
                    ) && i.regularizer.is_stochastic()
                });
            LayerInput {
                train: tr,
                test: te,
                context: LayerContext {
                    noise,
                    // the input, the logits and identity layers are linear maps of the data
                    nonlinear: layers[l].activation != Activation::Identity,
                    masked,
                    // set for every layer at once by `layers::divergences`
                    halves: None,
                },
                xt: xt_centres[l].as_ref().map(|(c, beta)| (c, *beta, group)),
            }
        })
        .collect();
    let divergences = super::layers::divergences(&inputs, &config.metrics, device, seed);
    let inputs_masked: Vec<bool> = inputs.iter().map(|i| i.context.masked).collect();
    drop(inputs);
    let rho = lipschitz_constants(model, mode, derive_seed(seed, "lipschitz"));
    // certified constants: Combettes–Pesquet, and CP over the bounding box of the captured
    // train and test points at each layer (certified on that box, the clouds' convex hull)
    let boxes: Vec<_> = tr_clouds
        .iter()
        .zip(&te_clouds)
        .map(|(tr, te)| bounding_box(&[&tr.points, &te.points]))
        .collect();
    let certified = certified_constants(model, mode, &boxes);
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
    let stochastic = match mode {
        _ if !config.model.regularizer.is_stochastic() => "none in this model",
        Stochastic::Active => "active",
        Stochastic::Off => "off",
    };
    super::layers::conclude(
        &mut summary,
        Conclusion {
            layers: &layers,
            divergences,
            rho: &rho,
            rho_local: &rho_local,
            rho_cp: &certified.cp,
            rho_box: &certified.boxed,
            rho_cert: &certified.cert,
            metrics: &config.metrics,
            mode,
            losses: Some((train_losses, test_losses)),
            stochastic,
            points: (tr_idx.len(), te_idx.len()),
        },
    );
    let estimate_s = t.elapsed().as_secs_f64();
    summary.timings = Timings {
        evaluate_s,
        capture_s,
        estimate_s,
        total_s: start.elapsed().as_secs_f64(),
        ..summary.timings
    };
    let file = export.then(|| LayerFile {
        layers: tr_clouds
            .into_iter()
            .zip(te_clouds)
            .zip(&summary.layers)
            .zip(&inputs_masked)
            .map(|(((tr, te), row), &masked)| FileLayer {
                name: row.name.clone(),
                train: tr.points,
                test: te.points,
                lipschitz: Some(row.lipschitz).filter(|l| l.is_finite()),
                lipschitz_local: Some(row.lipschitz_local).filter(|l| l.is_finite()),
                lipschitz_cp: Some(row.lipschitz_cp).filter(|l| l.is_finite()),
                lipschitz_box: Some(row.lipschitz_box).filter(|l| l.is_finite()),
                lipschitz_cert: Some(row.lipschitz_cert).filter(|l| l.is_finite()),
                activation: Some(row.activation.clone()),
                role: Some(row.role.clone()),
                regularizer: Some(row.regularizer.clone()),
                masked,
            })
            .collect(),
        train_labels: tr_labels,
        test_labels: te_labels,
        classes,
        train_loss: None,
        test_loss: None,
        train_error: None,
        test_error: None,
        config: None,
    });
    (summary, file)
}
