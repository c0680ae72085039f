//! The measurement shared by `funnel run` and `funnel measure`: losses and the measured gap,
//! capture of every layer, per-layer KL and W1 with nulls and intervals, mutual information,
//! Lipschitz constants and bounds — filled into the run's [`Summary`]. Computes only.

use std::time::Instant;

use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::lipschitz::{lipschitz_constants, local_lipschitz_constants};
use funnel_metrics::mi::{input_information, label_information};
use funnel_metrics::probe::capture_with_pre_noise;
use funnel_metrics::{assemble, layer_divergence, LayerContext, LayerRow, NoisyLayer};
use funnel_model::{Activation, LayerInfo, LayeredModel, Mlp, Regularizer, Stochastic};
use funnel_train::{evaluate, Dataset, Gap};
use tracing::info;

use crate::output;
use crate::results::*;
use crate::term::bar;

/// What `summary.json` says the null is.
pub const NULL_BASELINE: &str = "size-matched permutation: within each class the train and test points pooled and reassigned at the sizes the estimate used";

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
}

/// Measures `m` into `summary` (which arrives with data, model and training filled in): every
/// random stream is derived from the config's seed exactly as in a run, so the same model,
/// data and test set give the same numbers.
pub fn measure(m: Measure<'_>, mut summary: Summary) -> Summary {
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
    let estimate_s = t.elapsed().as_secs_f64();

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
            ratio_zero_one: crate::text::ratio(kl01, gap.zero_one),
            layer_any: bounds.kl_best_layer_any,
            zero_one_any: at(bounds.kl_best_layer_any, |r| r.kl_bound),
        },
        w1: W1BoundSummary {
            layer: funnel,
            cross_entropy_clipped: w1b,
            ratio_cross_entropy_clipped: crate::text::ratio(w1b, gap.cross_entropy_clipped),
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
        kl_estimator: output::table::kl_estimators(&bounds.rows),
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
        total_s: start.elapsed().as_secs_f64(),
        ..summary.timings
    };
    summary
}
