//! Estimators against closed forms (DESIGN §2.7) and properties that catch real bugs.

use crate::common::device;
use funnel_metrics::span::Coords;
use funnel_metrics::{
    kl, layer_divergence, w1, Cloud, KlEstimator, LayerContext, MetricsSpec, Points, W1Estimator,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// n draws of N(mean, diag(std²)).
fn gaussian(n: usize, mean: &[f64], std: &[f64], rng: &mut ChaCha8Rng) -> Coords {
    let d = mean.len();
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        for j in 0..d {
            let z: f64 = StandardNormal.sample(&mut *rng);
            data.push(mean[j] + std[j] * z);
        }
    }
    Coords::new(data, n, d)
}

/// KL(N(m1, diag(s1²)) ‖ N(m2, diag(s2²))).
fn kl_diag(m1: &[f64], s1: &[f64], m2: &[f64], s2: &[f64]) -> f64 {
    let mut t = 0.0;
    for j in 0..m1.len() {
        let (v1, v2) = (s1[j] * s1[j], s2[j] * s2[j]);
        t += v1 / v2 + (m2[j] - m1[j]).powi(2) / v2 - 1.0 + (v2 / v1).ln();
    }
    0.5 * t
}

/// P = N(0, I), Q = N(m, 1.5²·I) with ‖m‖ = 1.5: KL = 0.628, 1.011, 2.54 for d = 1, 4, 16.
fn pair(d: usize, n: usize, seed: u64) -> (Coords, Coords, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m: Vec<f64> = vec![1.5 / (d as f64).sqrt(); d];
    let (z, one, wide) = (vec![0.0; d], vec![1.0; d], vec![1.5; d]);
    let p = gaussian(n, &z, &one, &mut rng);
    let q = gaussian(n, &m, &wide, &mut rng);
    (p, q, kl_diag(&z, &one, &m, &wide))
}

#[test]
fn gaussian_kl_within_five_percent() {
    for d in [1, 4, 16] {
        let (p, q, truth) = pair(d, 5000, d as u64);
        let est = kl::gaussian(&p, &q, d).unwrap();
        let rel = (est.value - truth).abs() / truth;
        assert!(
            rel < 0.05,
            "d={d}: {} vs {truth} ({:.1}%)",
            est.value,
            100.0 * rel
        );
        assert_eq!(est.dims, d);
    }
}

#[test]
fn gaussian_kl_is_unbiased_when_dimension_is_close_to_the_sample_size() {
    // r = 12 dimensions from 40 points per side: the plug-in estimate's trace term alone has
    // expectation r(n−1)/(n−r−2) ≈ 18.7 instead of 12; the corrected estimate averages ≈ 0
    let trials = 40;
    let mut sum = 0.0;
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(400 + t);
        let p = gaussian(40, &[0.0; 12], &[1.0; 12], &mut rng);
        let q = gaussian(40, &[0.0; 12], &[1.0; 12], &mut rng);
        sum += kl::gaussian(&p, &q, 12).unwrap().value;
    }
    let mean = sum / trials as f64;
    assert!(
        mean.abs() < 0.5,
        "mean estimate {mean} for identical 12-d Gaussians, n = 40"
    );
    // and a shifted pair: KL = ½‖Δ‖² = 2
    let mut sum = 0.0;
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(500 + t);
        let p = gaussian(40, &[0.0; 12], &[1.0; 12], &mut rng);
        let mut m = [0.0; 12];
        m[0] = 2.0;
        let q = gaussian(40, &m, &[1.0; 12], &mut rng);
        sum += kl::gaussian(&p, &q, 12).unwrap().value;
    }
    let mean = sum / trials as f64;
    assert!((mean - 2.0).abs() < 0.5, "mean estimate {mean} for KL = 2");
}

#[test]
fn gaussian_kl_of_a_one_sided_flat_cloud_is_an_error() {
    // coordinate 1 is constant in P but varies in Q: P has no density w.r.t. Q
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut p = gaussian(200, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    let q = gaussian(200, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    p.data.iter_mut().skip(1).step_by(2).for_each(|v| *v = 0.0);
    let err = kl::gaussian(&p, &q, 2).unwrap_err().to_string();
    assert!(err.contains("flat") && err.contains("infinite"), "{err}");
}

#[test]
fn knn_kl_within_fifteen_percent_at_low_dimension() {
    for d in [1, 4] {
        let (p, q, truth) = pair(d, 5000, 10 + d as u64);
        for k in [1, 5] {
            let est = kl::knn(&p, &q, k, &device()).unwrap();
            let rel = (est.value - truth).abs() / truth;
            assert!(
                rel < 0.15,
                "d={d} k={k}: {} vs {truth} ({:.1}%)",
                est.value,
                100.0 * rel
            );
            assert_eq!(est.ties, 0);
        }
    }
}

#[test]
fn knn_kl_of_identical_distributions_is_zero_on_average() {
    let mut sum = 0.0;
    let trials = 12;
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + t);
        let p = gaussian(1500, &[0.0; 3], &[1.0; 3], &mut rng);
        let q = gaussian(1200, &[0.0; 3], &[1.0; 3], &mut rng);
        sum += kl::knn(&p, &q, 5, &device()).unwrap().value;
    }
    let mean = sum / trials as f64;
    assert!(
        mean.abs() < 0.02,
        "mean estimate {mean} for identical distributions"
    );
}

/// Minimum over all permutations of the mean matched distance.
fn brute_force_w1(p: &Coords, q: &Coords) -> f64 {
    fn rec(p: &Coords, q: &Coords, i: usize, used: &mut [bool], acc: f64, best: &mut f64) {
        if i == p.n {
            *best = best.min(acc);
            return;
        }
        for j in 0..q.n {
            if !used[j] {
                used[j] = true;
                let c = funnel_metrics::span::sq_dist(p.row(i), q.row(j)).sqrt();
                rec(p, q, i + 1, used, acc + c, best);
                used[j] = false;
            }
        }
    }
    let mut best = f64::INFINITY;
    rec(p, q, 0, &mut vec![false; q.n], 0.0, &mut best);
    best / p.n as f64
}

#[test]
fn exact_w1_equals_brute_force_on_tiny_clouds() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for n in 1..=7 {
        for d in [2, 3, 5] {
            let p = gaussian(n, &vec![0.0; d], &vec![1.0; d], &mut rng);
            let q = gaussian(n, &vec![0.5; d], &vec![2.0; d], &mut rng);
            let e = w1::exact(&p, &q, 1000, &mut rng).unwrap();
            let b = brute_force_w1(&p, &q);
            assert!(
                (e.value - b).abs() < 1e-12,
                "n={n} d={d}: {} vs {b}",
                e.value
            );
            assert_eq!(e.points_p, n);
        }
    }
}

#[test]
fn exact_w1_of_shifted_gaussians_is_the_shift() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let shift = [3.0, -1.0];
    let norm = (10.0f64).sqrt();
    let p = gaussian(1000, &[0.0, 0.0], &[1.0, 0.5], &mut rng);
    let q = gaussian(1000, &shift, &[1.0, 0.5], &mut rng);
    let e = w1::exact(&p, &q, 1000, &mut rng).unwrap();
    assert!(
        (e.value - norm).abs() / norm < 0.03,
        "{} vs {norm}",
        e.value
    );
}

#[test]
fn one_dimensional_w1_of_gaussians_matches_the_quantile_integral() {
    // W1(N(0,1), N(1, 2²)) = E|1 + Z| = 2φ(1) + 2Φ(1) − 1 = 1.16663
    let truth = 2.0 * (-0.5f64).exp() / (2.0 * std::f64::consts::PI).sqrt() + 0.682_689_492_137;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let p = gaussian(40_000, &[0.0], &[1.0], &mut rng);
    let q = gaussian(30_000, &[1.0], &[2.0], &mut rng);
    let e = w1::exact(&p, &q, 10, &mut rng).unwrap(); // 1-D ignores the cap: all points
    assert_eq!((e.points_p, e.points_q), (40_000, 30_000));
    assert!(
        (e.value - truth).abs() / truth < 0.02,
        "{} vs {truth}",
        e.value
    );
}

#[test]
fn sliced_w1_never_exceeds_exact_w1() {
    for seed in 0..5 {
        let mut rng = ChaCha8Rng::seed_from_u64(20 + seed);
        let p = gaussian(300, &[0.0; 6], &[1.0; 6], &mut rng);
        let q = gaussian(300, &[0.3, 0.0, 1.0, 0.0, 0.0, -0.5], &[1.5; 6], &mut rng);
        let exact = w1::exact(&p, &q, 300, &mut rng).unwrap().value;
        let sliced = w1::sliced(&p, &q, 64, &mut rng, &device()).unwrap().value;
        assert!(
            sliced <= exact * (1.0 + 1e-6),
            "sliced {sliced} > exact {exact}"
        );
        assert!(
            sliced > 0.05 * exact,
            "sliced {sliced} implausibly small vs {exact}"
        );
    }
}

fn cloud(c: &Coords, labels: Vec<usize>, classes: usize) -> Cloud {
    Cloud::new(
        Points::new(c.data.iter().map(|v| *v as f32).collect(), c.n, c.d),
        labels,
        classes,
    )
}

fn spec(kl: KlEstimator, w1: W1Estimator, bootstrap: usize) -> MetricsSpec {
    MetricsSpec {
        kl,
        w1,
        bootstrap,
        permutations: 19,
        ..MetricsSpec::default()
    }
}

#[test]
fn class_conditional_kl_adds_the_label_term() {
    // two classes; class 0 identical in train and test, class 1 shifted; labels 70/30 vs 50/50
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (n0, n1) = (2800, 1200);
    let (m0, m1) = (2000, 2000);
    let a = gaussian(n0, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    let b = gaussian(n1, &[5.0, 5.0], &[1.0, 1.0], &mut rng);
    let c = gaussian(m0, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    let e = gaussian(m1, &[6.0, 5.0], &[1.0, 1.0], &mut rng);
    let join = |x: &Coords, y: &Coords| {
        Coords::new([x.data.clone(), y.data.clone()].concat(), x.n + y.n, 2)
    };
    let labels = |a: usize, b: usize| [vec![0; a], vec![1; b]].concat();
    let train = cloud(&join(&a, &b), labels(n0, n1), 2);
    let test = cloud(&join(&c, &e), labels(m0, m1), 2);
    let label_kl = 0.7 * (0.7f64 / 0.5).ln() + 0.3 * (0.3f64 / 0.5).ln();
    let truth = label_kl + 0.3 * 0.5; // class 1: KL of a unit shift = ½
    let out = layer_divergence(
        &train,
        &test,
        &spec(KlEstimator::Gaussian, W1Estimator::Exact, 0),
        LayerContext::default(),
        &device(),
        1,
    );
    assert!((out.kl.label_term - label_kl).abs() < 1e-12);
    assert!(
        (out.kl.value - truth).abs() < 0.02,
        "{} vs {truth}",
        out.kl.value
    );
    assert_eq!((out.kl.points_train, out.kl.points_test), (4000, 4000));
    // W1: Σ π_tr(y)·W1_y ≈ 0.7·floor + 0.3·1, and TV(π_tr, π_te) = 0.2 beside it
    assert!((out.w1.label_term - 0.2).abs() < 1e-12);
    assert!(
        out.w1.value > 0.3 && out.w1.value < 0.45,
        "{}",
        out.w1.value
    );
    assert_eq!(out.w1.points_train, 1000 + 1000); // capped per class
    assert!(out.kl.error.is_none() && out.w1.error.is_none());
}

#[test]
fn null_baseline_is_near_zero_for_identical_distributions() {
    let mut sum_null = 0.0;
    let mut sum_value = 0.0;
    let trials = 8;
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(200 + t);
        let tr = gaussian(2000, &[0.0; 3], &[1.0; 3], &mut rng);
        let te = gaussian(2000, &[0.0; 3], &[1.0; 3], &mut rng);
        let labels: Vec<usize> = (0..2000).map(|i| i % 2).collect();
        let out = layer_divergence(
            &cloud(&tr, labels.clone(), 2),
            &cloud(&te, labels, 2),
            &spec(KlEstimator::Knn, W1Estimator::Sliced, 0),
            LayerContext::default(),
            &device(),
            t,
        );
        sum_null += out.kl.null;
        sum_value += out.kl.value;
        // W1 has a sampling floor: train-vs-test and the null sit at the same scale
        assert!(out.w1.value < 2.0 * out.w1.null && out.w1.null < 3.0 * out.w1.value);
    }
    assert!(
        (sum_null / trials as f64).abs() < 0.03,
        "mean null {}",
        sum_null / trials as f64
    );
    assert!(
        (sum_value / trials as f64).abs() < 0.03,
        "mean value {}",
        sum_value / trials as f64
    );
}

#[test]
fn bootstrap_interval_covers_the_truth_in_most_trials() {
    let trials = 20;
    let mut covered = 0;
    for t in 0..trials {
        let mut rng = ChaCha8Rng::seed_from_u64(300 + t);
        let p = gaussian(800, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
        let q = gaussian(800, &[1.0, 0.0], &[1.0, 1.0], &mut rng);
        let labels = vec![0; 800];
        let out = layer_divergence(
            &cloud(&p, labels.clone(), 1),
            &cloud(&q, labels, 1),
            &spec(KlEstimator::Gaussian, W1Estimator::Sliced, 60),
            LayerContext::default(),
            &device(),
            t,
        );
        assert_eq!(out.kl.resamples, 60);
        assert!(out.kl.lo <= out.kl.hi);
        if out.kl.lo <= 0.5 && 0.5 <= out.kl.hi {
            covered += 1;
        }
    }
    assert!(
        covered >= 15,
        "95% interval covered the truth in only {covered}/{trials} trials"
    );
}

#[test]
fn degenerate_clouds_give_errors_or_documented_values_never_panics() {
    let dev = device();
    let same = Coords::new(vec![1.0; 20], 10, 2);
    // all points equal in both clouds: KL 0 (span of rank 0), W1 0
    let c = cloud(&same, vec![0; 10], 1);
    let out = layer_divergence(
        &c,
        &c,
        &spec(KlEstimator::Knn, W1Estimator::Exact, 5),
        LayerContext::default(),
        &dev,
        0,
    );
    assert_eq!((out.kl.value, out.w1.value, out.rank), (0.0, 0.0, 0));
    // n ≤ k: an error naming the problem
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let small = gaussian(4, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    let s = cloud(&small, vec![0; 4], 1);
    let out = layer_divergence(
        &s,
        &s,
        &spec(KlEstimator::Knn, W1Estimator::Exact, 5),
        LayerContext::default(),
        &dev,
        0,
    );
    let err = out.kl.error.expect("knn with k = 5 on 4 points must fail");
    assert!(err.contains("needs at least 6"), "{err}");
    assert!(out.kl.value.is_nan());
    assert!(out.w1.error.is_none(), "W1 works on 4 points");
    // a constant column: the span drops it, estimators still work
    let mut data = gaussian(200, &[0.0, 0.0, 0.0], &[1.0, 1.0, 0.0], &mut rng);
    data.data
        .iter_mut()
        .skip(2)
        .step_by(3)
        .for_each(|v| *v = 7.0);
    let cc = cloud(&data, vec![0; 200], 1);
    let out = layer_divergence(
        &cc,
        &cc,
        &spec(KlEstimator::Gaussian, W1Estimator::Exact, 3),
        LayerContext::default(),
        &dev,
        0,
    );
    assert_eq!(out.rank, 2);
    // identical clouds: W1 exactly 0; the bias-corrected Gaussian KL is near 0 (slightly below)
    assert!(out.w1.value.abs() < 1e-9, "{}", out.w1.value);
    assert!(out.kl.value.abs() < 0.05, "{}", out.kl.value);
    // one class empty in the test cloud: infinite divergence is an error
    let tr = cloud(
        &gaussian(20, &[0.0], &[1.0], &mut rng),
        [vec![0; 10], vec![1; 10]].concat(),
        2,
    );
    let te = cloud(&gaussian(20, &[0.0], &[1.0], &mut rng), vec![0; 20], 2);
    let out = layer_divergence(
        &tr,
        &te,
        &spec(KlEstimator::Knn, W1Estimator::Exact, 3),
        LayerContext::default(),
        &dev,
        0,
    );
    assert!(out.kl.error.as_deref().unwrap().contains("class 1"));
    // NaN activations
    let mut nan = gaussian(30, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    nan.data[7] = f64::NAN;
    let nc = cloud(&nan, vec![0; 30], 1);
    let out = layer_divergence(
        &nc,
        &nc,
        &spec(KlEstimator::Knn, W1Estimator::Sliced, 3),
        LayerContext::default(),
        &dev,
        0,
    );
    assert!(out.kl.error.as_deref().unwrap().contains("non-finite"));
    assert!(out.w1.error.is_some());
}

#[test]
fn duplicate_points_are_counted_as_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut p = gaussian(300, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    let q = gaussian(300, &[0.0, 0.0], &[1.0, 1.0], &mut rng);
    // 20 copies of one point in P: their first neighbour is at distance 0
    for i in 0..20 {
        p.data[2 * i] = 0.25;
        p.data[2 * i + 1] = -0.5;
    }
    let v = kl::knn(&p, &q, 1, &device()).unwrap();
    assert_eq!(v.ties, 20);
    assert!(v.value.is_finite());
}
