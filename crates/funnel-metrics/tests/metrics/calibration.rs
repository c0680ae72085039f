//! The size-matched permutation null, the equal-size rule of kNN KL and the calibrated
//! interval (DESIGN §2.9), on clouds whose answer is known.

use crate::common::device;
use funnel_metrics::span::Coords;
use funnel_metrics::{
    kl, layer_divergence, Cloud, KlEstimator, LayerContext, MetricsSpec, Points, W1Estimator,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// tanh(A·x), x ~ N(shift·e₁, I_2), A ∈ R^{8×2} fixed: a 2-d manifold in R^8.
fn embedded(n: usize, shift: f64, rng: &mut ChaCha8Rng) -> Coords {
    let mut map = ChaCha8Rng::seed_from_u64(77);
    let a: Vec<f64> = (0..16)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut map);
            0.7 * z
        })
        .collect();
    let mut data = Vec::with_capacity(n * 8);
    for _ in 0..n {
        let x0: f64 = StandardNormal.sample(&mut *rng);
        let x1: f64 = StandardNormal.sample(&mut *rng);
        for j in 0..8 {
            data.push((a[2 * j] * (x0 + shift) + a[2 * j + 1] * x1).tanh());
        }
    }
    Coords::new(data, n, 8)
}

fn cloud(c: &Coords) -> Cloud {
    Cloud::new(
        Points::new(c.data.iter().map(|v| *v as f32).collect(), c.n, c.d),
        vec![0; c.n],
        1,
    )
}

fn spec(permutations: usize) -> MetricsSpec {
    MetricsSpec {
        kl: KlEstimator::Knn,
        w1: W1Estimator::Sliced,
        bootstrap: 10,
        permutations,
        max_points: 100_000,
        mi: false,
        ..MetricsSpec::default()
    }
}

/// Identical laws at 200 vs 2000 points on a 2-d manifold in R^8: the raw kNN estimator at
/// these sizes reads several nats below 0 (the bias (1 − d/d_int)·ln(m/(n−1))); funnel's
/// estimate works at equal sizes, and its size-matched null sees what is left.
#[test]
fn identical_laws_at_unequal_sizes_are_not_a_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let p = embedded(200, 0.0, &mut rng);
    let q = embedded(2000, 0.0, &mut rng);
    // the bias this guards against (the estimator itself, at unequal sizes)
    let raw = kl::knn(&p, &q, 5, &device()).unwrap().value;
    assert!(raw < -3.0, "raw kNN KL at 200 vs 2000: {raw}");
    let out = layer_divergence(
        &cloud(&p),
        &cloud(&q),
        &spec(99),
        LayerContext::default(),
        &device(),
        1,
    );
    let e = &out.kl;
    println!(
        "value {:.4} [{:.4}, {:.4}] null {:.4} sd {:.4} p {:.3} excess {:.4}",
        e.value, e.lo, e.hi, e.null, e.null_sd, e.p_value, e.excess
    );
    assert_eq!((e.points_train, e.points_test), (200, 200));
    assert!(e.value.abs() < 0.5, "{}", e.value);
    assert!(
        e.excess.abs() < 3.0 * e.null_sd,
        "excess {} sd {}",
        e.excess,
        e.null_sd
    );
    assert!(e.p_value > 0.05, "p {}", e.p_value);
    assert!(e.lo <= 0.0 + 1e-12 && e.hi >= 0.0, "[{}, {}]", e.lo, e.hi);
    assert_eq!(e.permutations, 99);
}

/// A real difference (KL 0.125 of the 2-d inputs, which the injective map keeps) at the same
/// sizes: every permutation reads less, so p is the smallest a permutation test can give.
#[test]
fn a_real_difference_has_the_smallest_p_value() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let p = embedded(500, 0.0, &mut rng);
    let q = embedded(500, 1.0, &mut rng);
    let out = layer_divergence(
        &cloud(&p),
        &cloud(&q),
        &spec(49),
        LayerContext::default(),
        &device(),
        2,
    );
    let e = &out.kl;
    assert!((e.p_value - 1.0 / 50.0).abs() < 1e-12, "p {}", e.p_value);
    assert!(e.excess > 0.2, "excess {}", e.excess);
    // The truth is ½ (a unit shift of the 2-d inputs), but kNN KL multiplies the log distance
    // ratios by the span's dimension (8), not the manifold's (2): it reads about 4× too high,
    // and no null can see that (the null is right: 0). A known shortfall, which `funnel
    // selftest` reports for the tanh cases; pinned here so that a fix shows up.
    assert!(
        e.value > 1.0 && e.lo > 0.5,
        "[{}, {}] value {}",
        e.lo,
        e.hi,
        e.value
    );
    // W1 too resolves a unit shift of the inputs
    assert!(
        out.w1.p_value <= 1.0 / 50.0 + 1e-12,
        "W1 p {}",
        out.w1.p_value
    );
}

/// No permutations: no null, no p-value, no excess — NaN, not 0.
#[test]
fn without_permutations_the_null_fields_are_nan() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let p = embedded(100, 0.0, &mut rng);
    let q = embedded(100, 0.0, &mut rng);
    let out = layer_divergence(
        &cloud(&p),
        &cloud(&q),
        &spec(0),
        LayerContext::default(),
        &device(),
        3,
    );
    assert!(out.kl.null.is_nan() && out.kl.p_value.is_nan() && out.kl.excess.is_nan());
    assert!(out.kl.lo.is_finite() && out.kl.hi.is_finite());
}
