//! Mutual information per layer, for the information plane.
//!
//! * **I(T_l; Y)** = Σ_y π_y·D(P_{T|y} ‖ P_T) on the training cloud, with the layer's KL
//!   estimator (kNN with the point itself excluded from both neighbour searches, Gaussian, or
//!   smoothed on noisy layers). Null: the same estimator after B seeded permutations of the
//!   labels (same class sizes, so the same sizes as the estimate), where the true value is 0.
//! * **I(X; T_l)** = h(T_l) − h(T_l | X) for a layer T_l = S_l + βZ with Gaussian noise: both
//!   entropies are of Gaussian mixtures (the sample-propagation estimator of Goldfeld et al.
//!   2019). h(T_l) mixes N(s, β²I) over every captured pre-noise point s; h(T_l | X = x) mixes
//!   over the pre-noise outputs of the same input x under independent upstream noise (`group`
//!   draws per input; one suffices when no noise lies upstream). There is no natural null
//!   (it is a difference of two entropy estimates), so `null` is NaN.
//!
//! Both carry the interval of [`crate::calibrate::Calibration`], with the spread from
//! half-samples of the examples (stratified by class for I(T; Y)).

use std::time::Instant;

use burn::prelude::*;
use funnel_core::derive_seed;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::calibrate::{half, Calibration};
use crate::cloud::{class_indices, Cloud};
use crate::divergence::{resolve_kl, LayerContext};
use crate::estimate::{Bias, Estimate};
use crate::kl;
use crate::smoothed::{grouped_mixture_entropy, mixture_entropy, smoothed_kl};
use crate::span::{Coords, Span};
use crate::spec::{KlEstimator, MetricsSpec};
use crate::EstimateError;

/// Σ_y π_y·D̂(P_y ‖ P) on coordinates `all` with labels `labels`.
#[allow(clippy::too_many_arguments)]
fn label_mi(
    all: &Coords,
    labels: &[usize],
    num_classes: usize,
    kind: KlEstimator,
    beta: Option<f64>,
    spec: &MetricsSpec,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<f64, EstimateError> {
    let n = all.n as f64;
    let mut total = 0.0;
    for (y, idx) in class_indices(labels, num_classes).iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let w = idx.len() as f64 / n;
        let d = match kind {
            KlEstimator::Knn | KlEstimator::Auto => kl::knn_within(all, idx, spec.k, device),
            KlEstimator::KnnAtoms => Err(EstimateError::Degenerate(
                "I(T; Y) has no knn_atoms version (its within-cloud neighbour search assumes a density); set metrics.mi = false or another kl".into(),
            )),
            KlEstimator::Gaussian => {
                // the mixture of the fitted class Gaussians, not one Gaussian fitted to the
                // (multi-modal) pooled cloud, whose KL would exceed H(Y)
                return gaussian_class_mi(all, labels, num_classes, spec.mc_draws, rng)
                    .and_then(|v| finite_mi(v, "I(T; Y)"));
            }
            KlEstimator::Smoothed => smoothed_kl(
                &all.select(idx),
                all,
                beta.expect("resolved smoothed KL has a β"),
                spec.mc_draws,
                rng,
                device,
            ),
        }
        .map_err(|e| EstimateError::InClass {
            class: y,
            source: Box::new(e),
        })?;
        total += w * d.value;
    }
    finite_mi(total, "I(T; Y)")
}

/// A mutual information, or an error when it is not finite (found by `cargo fuzz run
/// estimators`: clouds with coordinates near the f32 range gave NaN reported without an error).
fn finite_mi(v: f64, what: &str) -> Result<f64, EstimateError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EstimateError::Degenerate(format!(
            "{what} is not finite ({v}): the points are too far apart or too large for the estimator"
        )))
    }
}

/// I(T; Y) under a Gaussian model of each class: T | y ~ N(μ̂_y, Σ̂_y), T the mixture with
/// weights π_y; I = Σ_y π_y·E_{N_y}[ln N_y(x) − ln Σ_c π_c N_c(x)], by Monte Carlo with
/// `draws` × n_y samples per class. Works in the leading min(r, n_y/8) span directions (as
/// the Gaussian KL), so every class covariance is well conditioned.
fn gaussian_class_mi(
    all: &Coords,
    labels: &[usize],
    num_classes: usize,
    draws: usize,
    rng: &mut ChaCha8Rng,
) -> Result<f64, EstimateError> {
    use nalgebra::{Cholesky, DVector};
    use rand_distr::{Distribution, StandardNormal};
    let classes: Vec<Vec<usize>> = class_indices(labels, num_classes)
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    let smallest = classes.iter().map(Vec::len).min().unwrap_or(0);
    let r = all.d.min(smallest / 8);
    if r == 0 {
        return if all.d == 0 {
            Ok(0.0)
        } else {
            Err(EstimateError::TooFewPoints {
                estimator: "gaussian MI",
                have: smallest,
                need: 8,
            })
        };
    }
    let all = all.truncate_columns(r);
    let n = all.n as f64;
    let mut fits = Vec::with_capacity(classes.len());
    for c in &classes {
        let x = all.select(c);
        let chol = Cholesky::new(x.covariance()).ok_or_else(|| {
            EstimateError::Degenerate("a class covariance is singular in the span".into())
        })?;
        let logdet = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
        fits.push((
            DVector::from_vec(x.mean()),
            chol,
            logdet,
            c.len() as f64 / n,
        ));
    }
    let log_density =
        |x: &DVector<f64>,
         (mu, chol, logdet, _): &(DVector<f64>, Cholesky<f64, nalgebra::Dyn>, f64, f64)| {
            let d = x - mu;
            let z = chol
                .l()
                .solve_lower_triangular(&d)
                .expect("triangular solve");
            -0.5 * (z.norm_squared() + logdet + r as f64 * (2.0 * std::f64::consts::PI).ln())
        };
    let mut total = 0.0;
    for (y, fit) in fits.iter().enumerate() {
        let samples = classes[y].len() * draws;
        let mut sum = 0.0;
        for _ in 0..samples {
            let z = DVector::from_fn(r, |_, _| StandardNormal.sample(&mut *rng));
            let x = &fit.0 + fit.1.l() * z;
            let own = log_density(&x, fit);
            let terms: Vec<f64> = fits.iter().map(|f| f.3.ln() + log_density(&x, f)).collect();
            let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            sum += own - (m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln());
        }
        total += fit.3 * sum / samples as f64;
    }
    Ok(total)
}

/// Label permutations of the I(T; Y) null, at most.
pub const MI_PERMUTATIONS: usize = 19;

/// I(T; Y) of one layer's training cloud, with the KL estimator `auto` picks for the layer
/// (`layer` as for [`crate::layer_divergence`]: on a layer with Gaussian noise, the smoothed KL
/// of its training pre-noise cloud).
pub fn label_information(
    train: &Cloud,
    layer: LayerContext<'_>,
    spec: &MetricsSpec,
    device: &Device,
    seed: u64,
) -> Estimate {
    let start = Instant::now();
    let probe = Span::of(&[&Coords::from_points(&train.points)]);
    let noise = layer.noise.map(|n| (n.train_pre, n.beta));
    let (kind, _) = resolve_kl(
        spec,
        probe.rank(),
        noise.is_some(),
        layer.nonlinear,
        layer.masked,
    );
    let beta = noise.map(|n| n.1).or(spec.beta);
    let name = MetricsSpec {
        kl: kind,
        beta,
        ..spec.clone()
    }
    .kl_name();
    let fail = |msg: String| Estimate::failed(name.clone(), Bias::Estimate, msg);
    if train.is_empty() {
        return fail("the cloud is empty".into());
    }
    if kind == KlEstimator::Smoothed && beta.is_none() {
        return fail("smoothed KL needs a noise std: set metrics.beta".into());
    }
    let cloud = match (kind, noise) {
        (KlEstimator::Smoothed, Some((pre, _))) => pre,
        _ => train,
    };
    if !cloud.points.all_finite() {
        return fail("the layer has non-finite activations (NaN or ±inf)".into());
    }
    let raw = Coords::from_points(&cloud.points);
    let span = Span::of(&[&raw]);
    let all = span.project(&raw);
    let k = cloud.num_classes;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "mi-ty"));
    let value = match label_mi(&all, &cloud.labels, k, kind, beta, spec, &mut rng, device) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let mut notes = Vec::new();
    // null: permuted labels (the same class sizes, no dependence on T), at the same sizes;
    // each permutation is a whole MI estimate (k + 1 KL estimates), so at most
    // MI_PERMUTATIONS of them: the p-value's floor is then 1/20
    let permutations = spec.permutations.min(MI_PERMUTATIONS);
    let mut nulls = Vec::with_capacity(permutations);
    let mut null_failures = 0;
    for _ in 0..permutations {
        let mut shuffled = cloud.labels.clone();
        shuffled.shuffle(&mut rng);
        match label_mi(&all, &shuffled, k, kind, beta, spec, &mut rng, device) {
            Ok(v) => nulls.push(v),
            Err(_) => null_failures += 1,
        }
    }
    if null_failures > 0 {
        notes.push(format!(
            "{null_failures} of {permutations} label permutations failed"
        ));
    }
    let classes = class_indices(&cloud.labels, k);
    let mut values = Vec::with_capacity(spec.bootstrap);
    let mut failures = 0;
    for _ in 0..spec.bootstrap {
        let mut idx: Vec<usize> = Vec::with_capacity(all.n / 2 + k);
        for c in &classes {
            idx.extend(half(c.len(), &mut rng).into_iter().map(|i| c[i]));
        }
        let labels: Vec<usize> = idx.iter().map(|&i| cloud.labels[i]).collect();
        match label_mi(
            &all.select(&idx),
            &labels,
            k,
            kind,
            beta,
            spec,
            &mut rng,
            device,
        ) {
            Ok(v) => values.push(v),
            Err(_) => failures += 1,
        }
    }
    if failures > 0 {
        notes.push(format!(
            "{failures} of {} half-sample resamples failed",
            spec.bootstrap
        ));
    }
    Estimate {
        value,
        estimator: name,
        bias: Bias::Estimate,
        points_train: all.n,
        points_test: 0,
        dims: all.d,
        label_term: 0.0,
        seconds: start.elapsed().as_secs_f64(),
        notes,
        error: None,
        ..Estimate::calibrated(Calibration::of(
            value,
            &values,
            &nulls,
            null_failures,
            spec.confidence,
        ))
    }
}

/// h(T) − h(T | X) on coordinates `centres` (`group` consecutive rows per input).
fn input_mi(
    centres: &Coords,
    group: usize,
    beta: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<f64, EstimateError> {
    let h = mixture_entropy(centres, beta, draws, rng, device)?;
    let h_given_x = grouped_mixture_entropy(centres, group, beta, draws, rng)?;
    finite_mi(h - h_given_x, "I(X; T)")
}

/// I(X; T) of a layer with Gaussian noise β from its pre-noise outputs: `centres` holds
/// `group` consecutive rows per input example (independent upstream noise draws).
pub fn input_information(
    centres: &Cloud,
    group: usize,
    beta: f64,
    spec: &MetricsSpec,
    device: &Device,
    seed: u64,
) -> Estimate {
    let start = Instant::now();
    let name = format!("mixture entropies(β={beta}, {group} draws/input)");
    let fail = |msg: String| Estimate::failed(name.clone(), Bias::Estimate, msg);
    let group = group.max(1);
    if centres.is_empty() || !centres.len().is_multiple_of(group) {
        return fail(format!(
            "{} pre-noise points do not form groups of {group}",
            centres.len()
        ));
    }
    if !centres.points.all_finite() {
        return fail("the layer has non-finite pre-noise activations (NaN or ±inf)".into());
    }
    let raw = Coords::from_points(&centres.points);
    let all = Span::of(&[&raw]).project(&raw);
    let draws = spec.mc_draws;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "mi-xt"));
    let value = match input_mi(&all, group, beta, draws, &mut rng, device) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let inputs = all.n / group;
    let mut values = Vec::with_capacity(spec.bootstrap);
    for _ in 0..spec.bootstrap {
        let rows: Vec<usize> = half(inputs, &mut rng)
            .into_iter()
            .flat_map(|i| i * group..(i + 1) * group)
            .collect();
        if let Ok(v) = input_mi(&all.select(&rows), group, beta, draws, &mut rng, device) {
            values.push(v);
        }
    }
    Estimate {
        value,
        estimator: name,
        bias: Bias::Estimate,
        points_train: inputs,
        points_test: 0,
        dims: all.d,
        label_term: 0.0,
        seconds: start.elapsed().as_secs_f64(),
        notes: vec![
            "no null baseline: I(X;T) is a difference of two mixture-entropy estimates".into(),
        ],
        error: None,
        ..Estimate::calibrated(Calibration::of(value, &values, &[], 0, spec.confidence))
    }
}
