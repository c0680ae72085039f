//! The measured contraction D_l/D_{l−1} and its interval (`contraction::ratio_interval`): paired
//! half-samples across layers, the conservative fallback, and what happens without a ratio.

use crate::common::device;
use funnel_metrics::calibrate::Calibration;
use funnel_metrics::{
    layer_divergence, ratio_interval, Cloud, Estimate, KlEstimator, LayerContext, MetricsSpec,
    Points, W1Estimator,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// One class: n points of N(shift·e₁, I_2) (train: shift 0; test: shift δ), and the same points
/// through the invertible linear map x ↦ (2x₀ + x₁, 0.5x₁ − x₀) (not orthogonal: kNN distances
/// change, KL does not).
fn clouds(n: usize, delta: f64, seed: u64) -> [(Cloud, Cloud); 2] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |shift: f64| -> Vec<f64> {
        let mut v = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let a: f64 = StandardNormal.sample(&mut rng);
            let b: f64 = StandardNormal.sample(&mut rng);
            v.extend([a + shift, b]);
        }
        v
    };
    let (tr, te) = (draw(0.0), draw(delta));
    let map = |v: &[f64]| -> Vec<f64> {
        v.chunks(2)
            .flat_map(|x| [2.0 * x[0] + x[1], 0.5 * x[1] - x[0]])
            .collect()
    };
    let cloud = |v: &[f64]| {
        Cloud::new(
            Points::new(v.iter().map(|x| *x as f32).collect(), n, 2),
            vec![0; n],
            1,
        )
    };
    [
        (cloud(&tr), cloud(&te)),
        (cloud(&map(&tr)), cloud(&map(&te))),
    ]
}

fn spec() -> MetricsSpec {
    MetricsSpec {
        kl: KlEstimator::Knn,
        w1: W1Estimator::Sliced,
        bootstrap: 30,
        permutations: 19,
        max_points: 100_000,
        mi: false,
        ..MetricsSpec::default()
    }
}

/// (point ratio, interval) of layer 1 over layer 0 for one seed, `paired` or each layer with
/// its own half-samples.
fn measured(seed: u64, paired: bool) -> (f64, funnel_metrics::RatioInterval) {
    let [(p0, q0), (p1, q1)] = clouds(600, 1.0, seed);
    let ctx = LayerContext {
        halves: paired.then_some(1000 + seed),
        ..LayerContext::default()
    };
    let d0 = layer_divergence(&p0, &q0, &spec(), ctx, &device(), 10 * seed);
    let d1 = layer_divergence(&p1, &q1, &spec(), ctx, &device(), 10 * seed + 1);
    let part = |e: &Estimate| e.value - e.label_term;
    let point = part(&d1.kl) / part(&d0.kl);
    (point, ratio_interval(&d1.kl, &d0.kl, point, 0.95))
}

/// An invertible map keeps KL: the true ratio is 1. Over 20 seeded repetitions (kNN, 600
/// points per side, D_0 = ½) the paired interval contains its point ratio every time and 1
/// in at least 16 (a 95% interval that covered would miss more than 4 of 20 with probability
/// 1.6%); the conservative quotient of the layers' intervals is wider on average.
#[test]
fn paired_ratio_interval_covers_one_for_a_bijective_layer() {
    let (mut covered, mut width_paired, mut width_cons) = (0, 0.0, 0.0);
    let reps = 20;
    for seed in 0..reps {
        let (point, iv) = measured(seed, true);
        assert_eq!(iv.method, "paired");
        assert!(
            iv.lo <= point && point <= iv.hi,
            "seed {seed}: {point} outside [{}, {}]",
            iv.lo,
            iv.hi
        );
        covered += usize::from(iv.lo <= 1.0 && 1.0 <= iv.hi);
        width_paired += iv.hi - iv.lo;
        let (point_c, cons) = measured(seed, false);
        assert_eq!(cons.method, "conservative");
        assert!(cons.lo <= point_c && point_c <= cons.hi);
        width_cons += cons.hi - cons.lo;
        eprintln!(
            "seed {seed}: ratio {point:.3}, paired [{:.3}, {:.3}], conservative [{:.3}, {:.3}]",
            iv.lo, iv.hi, cons.lo, cons.hi
        );
    }
    assert!(covered >= 16, "1 covered in {covered} of {reps}");
    assert!(
        width_paired < width_cons,
        "paired {width_paired} vs conservative {width_cons}"
    );
}

fn estimate(value: f64, lo: f64, hi: f64, halves: Vec<f64>, key: Option<u64>) -> Estimate {
    let mut e = Estimate::calibrated(Calibration::of(value, &[], &[], 0, 0.95));
    e.value = value;
    e.lo = lo;
    e.hi = hi;
    e.label_term = 0.0;
    e.halves = halves;
    e.halves_key = key;
    e
}

/// NaN and ∞, honestly: no ratio without a positive previous value; an unbounded upper end when
/// the previous layer's interval (or enough of its half-samples) reaches 0; never a number made up.
#[test]
fn ratio_interval_reports_unbounded_and_undefined_ratios() {
    // the previous layer's value ≤ 0: no ratio, no interval
    let prev = estimate(-0.01, 0.0, 0.05, vec![], None);
    let now = estimate(0.2, 0.1, 0.3, vec![], None);
    let iv = ratio_interval(&now, &prev, f64::NAN, 0.95);
    assert!(iv.lo.is_nan() && iv.hi.is_nan() && iv.method.is_empty());
    // conservative, the previous interval reaches 0: unbounded above
    let prev = estimate(0.1, 0.0, 0.2, vec![], None);
    let iv = ratio_interval(&now, &prev, 2.0, 0.95);
    assert_eq!(iv.method, "conservative");
    assert!((iv.lo - 0.5).abs() < 1e-12, "{}", iv.lo);
    assert_eq!(iv.hi, f64::INFINITY);
    // conservative, both intervals positive: [lo/hi_prev, hi/lo_prev]
    let prev = estimate(0.1, 0.05, 0.2, vec![], None);
    let iv = ratio_interval(&now, &prev, 2.0, 0.95);
    assert!((iv.lo - 0.5).abs() < 1e-12 && (iv.hi - 6.0).abs() < 1e-12);
    // paired: a ratio of exactly 2 in every half-sample gives [2, 2]
    let h0: Vec<f64> = (1..=20).map(|i| 0.05 + 0.01 * i as f64).collect();
    let h1: Vec<f64> = h0.iter().map(|v| 2.0 * v).collect();
    let prev = estimate(0.15, 0.05, 0.25, h0.clone(), Some(7));
    let now = estimate(0.3, 0.1, 0.5, h1, Some(7));
    let iv = ratio_interval(&now, &prev, 2.0, 0.95);
    assert_eq!(iv.method, "paired");
    assert!((iv.lo - 2.0).abs() < 1e-12 && (iv.hi - 2.0).abs() < 1e-12);
    // different keys: not paired
    let now_other = estimate(0.3, 0.1, 0.5, now.halves.clone(), Some(8));
    assert_eq!(
        ratio_interval(&now_other, &prev, 2.0, 0.95).method,
        "conservative"
    );
    // paired, but a quarter of the previous layer's half-samples ≤ 0: unbounded above
    let mut h0z = h0.clone();
    for v in h0z.iter_mut().take(5) {
        *v = -0.01;
    }
    let prev = estimate(0.15, 0.0, 0.25, h0z, Some(7));
    let iv = ratio_interval(&now, &prev, 2.0, 0.95);
    assert_eq!(iv.hi, f64::INFINITY);
    assert!(iv.lo.is_finite() && iv.lo <= 2.0);
    // failed draws (NaN) are left out of the pairs
    let mut h1n = now.halves.clone();
    h1n[3] = f64::NAN;
    let now_nan = estimate(0.3, 0.1, 0.5, h1n, Some(7));
    let prev = estimate(0.15, 0.05, 0.25, h0, Some(7));
    let iv = ratio_interval(&now_nan, &prev, 2.0, 0.95);
    assert!((iv.lo - 2.0).abs() < 1e-12 && (iv.hi - 2.0).abs() < 1e-12);
}
