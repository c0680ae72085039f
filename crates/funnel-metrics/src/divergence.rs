//! Class-conditional divergences between a layer's train and test clouds, each with a
//! size-matched permutation null, a p-value and an interval (DESIGN §2.3, §2.4, §2.9).
//!
//! * KL: D = KL(π_tr ‖ π_te) + Σ_y π_tr(y)·KL(P_{T|y} ‖ Q_{T|y}).
//! * W1: W = Σ_y π_tr(y)·W1(P_{T|y}, Q_{T|y}); the label term TV(π_tr, π_te) is reported beside
//!   it and enters the bound as c·TV.
//!
//! Each class is worked in the span of its pooled (train ∪ test) cloud, computed once and reused
//! by every permutation and half-sample (they are rearrangements and subsets of the same
//! points). The null, p-value, excess and interval are computed by [`crate::calibrate`]; kNN KL
//! works at equal sizes per class (the larger side subsampled once, seeded).

use std::cell::Cell;

use burn::prelude::*;
use funnel_core::derive_seed;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::calibrate::{calibrate, ClassPair};
use crate::cloud::Cloud;
use crate::estimate::{Bias, Estimate};
use crate::kl::{self, categorical};
use crate::sinkhorn::{sinkhorn, SinkhornSettings};
use crate::smoothed::smoothed_kl;
use crate::span::{Coords, Span};
use crate::spec::{KlEstimator, MetricsSpec, W1Estimator, AUTO_KNN_MAX_RANK};
use crate::w1;
use crate::EstimateError;

/// The divergences of one layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerDivergence {
    pub kl: Estimate,
    pub w1: Estimate,
    /// Rank of the layer's cloud (largest per-class span rank).
    pub rank: usize,
    /// Why this KL estimator was used on the layer (`auto`'s rule, or "as configured").
    #[serde(default)]
    pub kl_why: String,
    /// I(T_l; Y) and I(X; T_l) ([`crate::mi`]), filled in by the caller when measured.
    pub mi_ty: Option<Estimate>,
    pub mi_xt: Option<Estimate>,
}

/// A layer that adds Gaussian noise N(0, β²I) after its activation: its clouds *before* the
/// noise (upstream noise included), which the `smoothed` KL and the mixture entropies smooth
/// analytically instead of sampling.
#[derive(Clone, Copy, Debug)]
pub struct NoisyLayer<'a> {
    pub beta: f64,
    pub train_pre: &'a Cloud,
    pub test_pre: &'a Cloud,
}

/// What the estimators may know about a layer beyond its points.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerContext<'a> {
    /// The layer adds Gaussian noise: its pre-noise clouds and β.
    pub noise: Option<NoisyLayer<'a>>,
    /// The layer applies a non-linear activation, so its clouds are not Gaussian even for
    /// Gaussian inputs (ReLU clouds have faces and atoms on which a Gaussian fit is singular):
    /// `auto` keeps kNN at every rank. `false` for linear layers, the input and the logits,
    /// and for clouds of unknown origin.
    pub nonlinear: bool,
    /// The layer applies Dropout or DropConnect masks at measurement: its cloud has atoms and
    /// exact zeros, on which a Gaussian fit is meaningless, so `auto` keeps kNN at every rank.
    pub masked: bool,
    /// A seed for the half-samples' index draws shared by every layer of a run (the same
    /// examples in draw b at every layer, so consecutive layers' KL half-samples are paired
    /// and their ratio gets an interval, [`crate::bounds`]). `None`: each layer draws its own.
    pub halves: Option<u64>,
}

/// The KL estimator `spec.kl` stands for on a layer of span rank `rank`, and why (for the run
/// header): `auto` is `smoothed` on a layer with Gaussian noise of its own, `knn` on a masked
/// (Dropout, DropConnect) or non-linear layer or at rank ≤ [`AUTO_KNN_MAX_RANK`], `gaussian`
/// otherwise (see `funnel selftest`).
pub fn resolve_kl(
    spec: &MetricsSpec,
    rank: usize,
    noisy: bool,
    nonlinear: bool,
    masked: bool,
) -> (KlEstimator, &'static str) {
    match spec.kl {
        KlEstimator::Auto if noisy => (KlEstimator::Smoothed, "Gaussian noise of its own"),
        KlEstimator::Auto if masked => (KlEstimator::Knn, "dropout masks: atoms and zeros"),
        KlEstimator::Auto if nonlinear => (KlEstimator::Knn, "non-linear: not Gaussian"),
        KlEstimator::Auto if rank <= AUTO_KNN_MAX_RANK => (KlEstimator::Knn, "rank ≤ 8"),
        KlEstimator::Auto => (KlEstimator::Gaussian, "linear, rank > 8"),
        other => (other, "as configured"),
    }
}

/// Estimates KL and W1 between the train and test clouds of one layer, class-conditionally,
/// each with its null baseline and half-sampling interval. `seed` makes every random choice
/// reproducible. Never panics on degenerate clouds: failures come back as estimates with an
/// `error`.
pub fn layer_divergence(
    train: &Cloud,
    test: &Cloud,
    spec: &MetricsSpec,
    layer: LayerContext<'_>,
    device: &Device,
    seed: u64,
) -> LayerDivergence {
    let w1_name = spec.w1_name();
    let w1_bias = spec.w1_bias();
    let fail = |msg: String| LayerDivergence {
        kl: Estimate::failed(spec.kl_name(), Bias::Estimate, msg.clone()),
        w1: Estimate::failed(w1_name.clone(), w1_bias, msg),
        rank: 0,
        kl_why: String::new(),
        mi_ty: None,
        mi_xt: None,
    };

    if train.dim() != test.dim() || train.num_classes != test.num_classes {
        return fail("train and test clouds have different shapes".into());
    }
    if !train.points.all_finite() || !test.points.all_finite() {
        return fail("the layer has non-finite activations (NaN or ±inf)".into());
    }
    if train.is_empty() || test.is_empty() {
        return fail("a cloud is empty".into());
    }
    if let Some(y) = train
        .labels
        .iter()
        .chain(&test.labels)
        .find(|&&y| y >= train.num_classes)
    {
        return fail(format!(
            "label {y} is outside the {} classes",
            train.num_classes
        ));
    }
    let tr_idx = train.class_indices();
    let te_idx = test.class_indices();
    let pi_tr = train.class_weights();
    let pi_te = test.class_weights();
    let mut classes = Vec::new();
    // the atom-aware estimator needs the raw coordinates (exact zeros, exact duplicates), which
    // the span rotation does not keep; `auto` never resolves to it
    let keep_raw = spec.kl == KlEstimator::KnnAtoms;
    let mut raw_classes = Vec::new();
    let mut rank = 0;
    for y in 0..train.num_classes {
        if tr_idx[y].is_empty() {
            continue; // weight 0
        }
        if te_idx[y].is_empty() {
            return fail(format!(
                "class {y} has {} training points but none in the test cloud: the divergence is infinite",
                tr_idx[y].len()
            ));
        }
        let p = Coords::from_points(&train.points.select(&tr_idx[y]));
        let q = Coords::from_points(&test.points.select(&te_idx[y]));
        let span = Span::of(&[&p, &q]);
        rank = rank.max(span.rank());
        classes.push(ClassPair {
            class: y,
            weight: pi_tr[y],
            train: span.project(&p),
            test: span.project(&q),
        });
        if keep_raw {
            raw_classes.push(ClassPair {
                class: y,
                weight: pi_tr[y],
                train: p,
                test: q,
            });
        }
    }
    // the smoothed KL works on the pre-noise clouds of a noisy layer (same examples, so the
    // same class sizes and halves)
    let noise = layer.noise;
    let noisy = noise.is_some();
    let pre_classes: Option<Vec<ClassPair>> = match noise {
        Some(nl) => {
            if nl.train_pre.labels != train.labels || nl.test_pre.labels != test.labels {
                return fail(
                    "the pre-noise clouds are not the same examples as the layer's".into(),
                );
            }
            if !nl.train_pre.points.all_finite() || !nl.test_pre.points.all_finite() {
                return fail("the layer has non-finite pre-noise activations (NaN or ±inf)".into());
            }
            let mut out = Vec::new();
            for c in &classes {
                let p = Coords::from_points(&nl.train_pre.points.select(&tr_idx[c.class]));
                let q = Coords::from_points(&nl.test_pre.points.select(&te_idx[c.class]));
                let span = Span::of(&[&p, &q]);
                out.push(ClassPair {
                    class: c.class,
                    weight: c.weight,
                    train: span.project(&p),
                    test: span.project(&q),
                });
            }
            Some(out)
        }
        None => None,
    };
    let label_kl = categorical(&pi_tr, &pi_te).unwrap_or(f64::INFINITY);
    let label_tv = 0.5
        * pi_tr
            .iter()
            .zip(&pi_te)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
    let k = spec.k;
    let (kl_kind, kl_why) = resolve_kl(spec, rank, noisy, layer.nonlinear, layer.masked);
    let beta = noise.map(|n| n.beta).or(spec.beta);
    let kl_name = MetricsSpec {
        kl: kl_kind,
        beta,
        ..spec.clone()
    }
    .kl_name();
    let kl_classes = match (kl_kind, &pre_classes) {
        (KlEstimator::Smoothed, Some(pre)) => pre,
        (KlEstimator::KnnAtoms, _) => &raw_classes,
        _ => &classes,
    };
    // kNN KL at unequal sizes carries a bias (1 − d/d_int)·ln(m/(n−1)) wherever the cloud's
    // intrinsic dimension d_int is below the dimension d it is measured in (−7 nats at 200 vs
    // 2000 points in a 2-d manifold of R^8): the kNN estimators work at equal sizes per class,
    // the larger side subsampled (seeded); value, null and half-samples all see those sizes
    let equalized: Vec<ClassPair>;
    let mut kl_notes = Vec::new();
    let kl_classes = if matches!(kl_kind, KlEstimator::Knn | KlEstimator::KnnAtoms)
        && kl_classes.iter().any(|c| c.train.n != c.test.n)
    {
        // with the run's shared half-sample stream the subsample is shared too (the same
        // examples at every layer, so that the half-samples stay paired across layers)
        let equal_seed = layer.halves.unwrap_or(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(equal_seed, "equal-sizes"));
        equalized = kl_classes
            .iter()
            .map(|c| {
                let n = c.train.n.min(c.test.n);
                let take = |x: &Coords, rng: &mut ChaCha8Rng| {
                    if x.n == n {
                        x.clone()
                    } else {
                        x.select(&w1::subsample(x.n, n, rng))
                    }
                };
                ClassPair {
                    class: c.class,
                    weight: c.weight,
                    train: take(&c.train, &mut rng),
                    test: take(&c.test, &mut rng),
                }
            })
            .collect();
        kl_notes.push(
            "kNN KL at equal sizes per class: the larger side was subsampled (unequal sizes bias kNN KL on clouds of low intrinsic dimension)".to_string(),
        );
        &equalized
    } else {
        kl_classes
    };
    // pairing across layers needs the same examples at the same positions: the kNN
    // equal-size subsample above is drawn from the shared stream when there is one, and the
    // half-samples' key records the sizes, so a layer measured at other sizes is not paired
    let kl_halves = layer.halves;
    let draws = spec.mc_draws;
    // Gaussian KL: one dimension per class for the value, the null and every half-sample, well
    // below the smallest sample any of them sees (half of a side), so the inverse covariance
    // stays well conditioned
    let mut gauss_dims = vec![0; train.num_classes];
    for c in &classes {
        let smallest = (c.train.n / 2).min(c.test.n / 2);
        gauss_dims[c.class] = c.train.d.min(smallest / 4);
    }
    let mut kl = calibrate(
        kl_classes,
        label_kl,
        spec,
        kl_name,
        Bias::Estimate,
        derive_seed(seed, "kl"),
        kl_halves,
        &mut |class, p, q, rng| {
            let v = match kl_kind {
                KlEstimator::Knn | KlEstimator::Auto => kl::knn(p, q, k, device)?,
                KlEstimator::KnnAtoms => crate::atoms::knn_atoms(p, q, k, device)?,
                KlEstimator::Gaussian => kl::gaussian(p, q, gauss_dims[class])?,
                KlEstimator::Smoothed => {
                    let beta = beta.ok_or_else(|| {
                        EstimateError::Degenerate(
                            "smoothed KL needs a noise std: this layer has no gaussian_noise of its own, so set metrics.beta".into(),
                        )
                    })?;
                    smoothed_kl(p, q, beta, draws, rng, device)?
                }
            };
            Ok((v.value, v.dims, v.ties, (p.n, q.n)))
        },
    );
    kl.notes.extend(kl_notes);
    let cap = spec.exact_max_per_class;
    let sinkhorn_settings = SinkhornSettings {
        epsilon: spec.sinkhorn_epsilon,
        max_points: spec.sinkhorn_max_per_class,
        iterations: spec.sinkhorn_iterations,
    };
    let unconverged = Cell::new(0usize);
    let directions = spec.sliced_directions;
    // W1 is combined without its label term; TV(π_tr, π_te) is kept beside it (the bound adds
    // c·TV), so `label_term` is set after calibration.
    let mut w1 = calibrate(
        &classes,
        0.0,
        spec,
        w1_name,
        w1_bias,
        derive_seed(seed, "w1"),
        None,
        &mut |_class, p, q, rng| {
            let v = match spec.w1 {
                W1Estimator::Exact => w1::exact(p, q, cap, rng)?,
                W1Estimator::Sinkhorn => {
                    let s = sinkhorn(p, q, &sinkhorn_settings, rng, device)?;
                    if !s.converged {
                        unconverged.set(unconverged.get() + 1);
                    }
                    s.w1
                }
                W1Estimator::Sliced => w1::sliced(p, q, directions, rng, device)?,
            };
            Ok((v.value, p.d, 0, (v.points_p, v.points_q)))
        },
    );
    w1.label_term = label_tv;
    if spec.w1 == W1Estimator::Sinkhorn && w1.error.is_none() {
        w1.notes.push(format!(
            "sinkhorn: primal cost of the entropic plan (ε = {} × mean distance) rounded to an exact coupling — an upper bound of the empirical W1",
            spec.sinkhorn_epsilon
        ));
        if unconverged.get() > 0 {
            w1.notes.push(format!(
                "{} sinkhorn solves stopped at the iteration cap before their marginal tolerance (the rounding keeps each value a valid upper bound, but a looser one)",
                unconverged.get()
            ));
        }
    }
    if kl_kind == KlEstimator::Gaussian && kl.error.is_none() {
        for c in classes.iter().filter(|c| gauss_dims[c.class] < c.train.d) {
            kl.notes.push(format!(
                "class {}: gaussian KL kept the leading {} of {} span directions (too few points for a full covariance); it estimates the KL of that projection, a lower bound",
                c.class, gauss_dims[c.class], c.train.d
            ));
        }
    }
    LayerDivergence {
        kl,
        w1,
        rank,
        kl_why: kl_why.to_string(),
        mi_ty: None,
        mi_xt: None,
    }
}
