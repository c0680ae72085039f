//! Sinkhorn, sliced and exact W1 against each other; the smoothed KL and the mixture
//! entropies against closed forms.

use crate::common::device;
use funnel_metrics::sinkhorn::{sinkhorn, SinkhornSettings};
use funnel_metrics::smoothed::{mixture_entropy, smoothed_kl};
use funnel_metrics::span::Coords;
use funnel_metrics::w1;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn normal(n: usize, d: usize, shift: f64, std: f64, rng: &mut ChaCha8Rng) -> Coords {
    let data = (0..n * d)
        .map(|i| {
            let z: f64 = StandardNormal.sample(&mut *rng);
            std * z + if i % d == 0 { shift } else { 0.0 }
        })
        .collect();
    Coords::new(data, n, d)
}

const SETTINGS: SinkhornSettings = SinkhornSettings {
    epsilon: 0.01,
    max_points: 10_000,
    iterations: 2000,
};

#[test]
fn sinkhorn_is_an_upper_bound_close_to_exact_and_sliced_a_lower_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (n, d, shift) in [(60, 2, 0.0), (200, 5, 1.0), (400, 16, 0.5), (300, 3, 3.0)] {
        let p = normal(n, d, 0.0, 1.0, &mut rng);
        let q = normal(n, d, shift, 1.0, &mut rng);
        let exact = w1::exact(&p, &q, n, &mut rng).unwrap().value;
        let s = sinkhorn(&p, &q, &SETTINGS, &mut rng, &device()).unwrap();
        let sliced = w1::sliced(&p, &q, 64, &mut rng, &device()).unwrap().value;
        println!(
            "n={n} d={d} shift={shift}: exact {exact:.5} sinkhorn {:.5} (+{:.2}%, {} it, marg {:.1e}) sliced {sliced:.5}",
            s.w1.value,
            100.0 * (s.w1.value - exact) / exact,
            s.iterations,
            s.marginal_error
        );
        assert!(s.w1.value >= exact * (1.0 - 1e-9), "sinkhorn below exact");
        assert!(
            s.w1.value <= exact * 1.05,
            "sinkhorn {} more than 5% above exact {exact}",
            s.w1.value
        );
        assert!(sliced <= exact * (1.0 + 1e-9), "sliced above exact");
    }
}

#[test]
fn sinkhorn_handles_unequal_sizes_and_degenerate_clouds() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // unequal sizes: W1 between {0} and {−1, 1} in the plane is 1, exactly
    let p = Coords::new(vec![0.0, 0.0], 1, 2);
    let q = Coords::new(vec![-1.0, 0.0, 1.0, 0.0], 2, 2);
    let s = sinkhorn(&p, &q, &SETTINGS, &mut rng, &device()).unwrap();
    assert!((s.w1.value - 1.0).abs() < 1e-9, "{}", s.w1.value);
    // identical single points: 0; empty: an error
    let same = Coords::new(vec![2.0, 2.0, 2.0, 2.0], 2, 2);
    assert_eq!(
        sinkhorn(&same, &same, &SETTINGS, &mut rng, &device())
            .unwrap()
            .w1
            .value,
        0.0
    );
    let empty = Coords::new(vec![], 0, 2);
    assert!(sinkhorn(&empty, &same, &SETTINGS, &mut rng, &device()).is_err());
    // a large shift of a tight cloud: W1 = the shift
    let a = normal(100, 4, 0.0, 1e-3, &mut rng);
    let mut b = a.clone();
    b.data.iter_mut().step_by(4).for_each(|v| *v += 50.0);
    let s = sinkhorn(&a, &b, &SETTINGS, &mut rng, &device()).unwrap();
    assert!(
        s.w1.value >= 50.0 - 1e-9 && s.w1.value < 50.01,
        "{}",
        s.w1.value
    );
}

#[test]
fn smoothed_kl_of_shifted_gaussians_matches_the_closed_form() {
    // P = N(0, I), Q = N(Δ, I) smoothed by N(0, β²I): KL = ‖Δ‖² / (2(1 + β²))
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let (d, beta, shift) = (2, 1.0, 1.5);
    let p = normal(3000, d, 0.0, 1.0, &mut rng);
    let q = normal(3000, d, shift, 1.0, &mut rng);
    let v = smoothed_kl(&p, &q, beta, 4, &mut rng, &device())
        .unwrap()
        .value;
    let truth = shift * shift / (2.0 * (1.0 + beta * beta));
    println!("smoothed KL {v:.4} vs {truth:.4}");
    assert!((v - truth).abs() < 0.1 * truth, "{v} vs {truth}");
    // the same cloud against itself: the plug-in estimate is 0 up to MC noise
    let z = smoothed_kl(&p, &p, beta, 4, &mut rng, &device())
        .unwrap()
        .value;
    assert!(z.abs() < 0.01, "{z}");
}

#[test]
fn mixture_entropy_of_a_gaussian_sample_approaches_the_gaussian_entropy() {
    // centres ~ N(0, I_d), smoothed by β: T ~ N(0, (1 + β²) I), h = (d/2) ln(2πe(1 + β²))
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let (d, beta) = (2, 1.0);
    let c = normal(4000, d, 0.0, 1.0, &mut rng);
    let h = mixture_entropy(&c, beta, 2, &mut rng, &device()).unwrap();
    let truth = 0.5 * d as f64 * (2.0 * std::f64::consts::PI * std::f64::consts::E * 2.0).ln();
    println!("mixture entropy {h:.4} vs {truth:.4}");
    assert!((h - truth).abs() < 0.03 * truth, "{h} vs {truth}");
}

mod information {
    use super::*;
    use funnel_metrics::mi::{input_information, label_information};
    use funnel_metrics::{Cloud, KlEstimator, LayerContext, MetricsSpec, Points};

    fn cloud(c: &Coords, labels: Vec<usize>, k: usize) -> Cloud {
        let pts = Points::new(c.data.iter().map(|v| *v as f32).collect(), c.n, c.d);
        Cloud::new(pts, labels, k)
    }

    fn spec(kl: KlEstimator) -> MetricsSpec {
        MetricsSpec {
            kl,
            bootstrap: 8,
            permutations: 19,
            ..MetricsSpec::default()
        }
    }

    #[test]
    fn label_information_is_ln_two_for_separated_classes_and_zero_for_identical_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let a = normal(600, 2, 0.0, 1.0, &mut rng);
        let b = normal(600, 2, 40.0, 1.0, &mut rng);
        let c = normal(600, 2, 0.0, 1.0, &mut rng);
        let labels = [vec![0; 600], vec![1; 600]].concat();
        let join = |x: &Coords, y: &Coords| {
            Coords::new([x.data.clone(), y.data.clone()].concat(), x.n + y.n, x.d)
        };
        for kind in [KlEstimator::Knn, KlEstimator::Gaussian] {
            let far = label_information(
                &cloud(&join(&a, &b), labels.clone(), 2),
                LayerContext::default(),
                &spec(kind),
                &device(),
                1,
            );
            println!(
                "{kind:?}: far {:.4} [{:.4}, {:.4}] null {:.4}",
                far.value, far.lo, far.hi, far.null
            );
            assert!(
                (far.value - 2f64.ln()).abs() < 0.05,
                "{kind:?}: {}",
                far.value
            );
            assert!(far.null.abs() < 0.05, "{kind:?}: null {}", far.null);
            let same = label_information(
                &cloud(&join(&a, &c), labels.clone(), 2),
                LayerContext::default(),
                &spec(kind),
                &device(),
                1,
            );
            assert!(same.value.abs() < 0.05, "{kind:?}: {}", same.value);
            assert!(same.lo <= same.hi);
        }
        // smoothed with a small β on the separated classes: ln 2 as well
        let s = MetricsSpec {
            beta: Some(0.5),
            ..spec(KlEstimator::Smoothed)
        };
        let far = label_information(
            &cloud(&join(&a, &b), labels, 2),
            LayerContext::default(),
            &s,
            &device(),
            1,
        );
        assert!(
            (far.value - 2f64.ln()).abs() < 0.02,
            "smoothed: {}",
            far.value
        );
    }

    #[test]
    fn input_information_of_a_gaussian_channel() {
        // T = X + βZ with X ~ N(0, σ²) in 1-D: I(X; T) = ½·ln(1 + σ²/β²)
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let x = normal(3000, 1, 0.0, 1.0, &mut rng);
        let c = cloud(&x, vec![0; 3000], 1);
        let est = input_information(&c, 1, 1.0, &spec(KlEstimator::Auto), &device(), 2);
        let truth = 0.5 * 2f64.ln();
        println!(
            "I(X;T) {:.4} [{:.4}, {:.4}] vs {truth:.4}",
            est.value, est.lo, est.hi
        );
        assert!((est.value - truth).abs() < 0.03, "{} vs {truth}", est.value);
        // groups of identical centres (no upstream noise) give the same answer
        let rep = Coords::new(x.data.iter().flat_map(|v| [*v, *v]).collect(), 6000, 1);
        let est2 = input_information(
            &cloud(&rep, vec![0; 6000], 1),
            2,
            1.0,
            &spec(KlEstimator::Auto),
            &device(),
            2,
        );
        assert!(
            (est2.value - truth).abs() < 0.03,
            "{} vs {truth}",
            est2.value
        );
    }
}

mod degenerate {
    use super::*;
    use funnel_metrics::mi::{input_information, label_information};
    use funnel_metrics::{
        layer_divergence, resolve_kl, Cloud, KlEstimator, LayerContext, MetricsSpec, NoisyLayer,
        Points, W1Estimator,
    };

    fn cloud(data: Vec<f32>, n: usize, d: usize, labels: Vec<usize>, k: usize) -> Cloud {
        Cloud::new(Points::new(data, n, d), labels, k)
    }

    fn spec() -> MetricsSpec {
        MetricsSpec {
            kl: KlEstimator::Smoothed,
            beta: Some(0.5),
            w1: W1Estimator::Sinkhorn,
            bootstrap: 4,
            permutations: 9,
            ..MetricsSpec::default()
        }
    }

    #[test]
    fn auto_resolves_by_noise_and_rank() {
        let s = MetricsSpec::default();
        assert_eq!(s.kl, KlEstimator::Auto);
        assert_eq!(
            resolve_kl(&s, 3, true, true, false).0,
            KlEstimator::Smoothed
        );
        assert_eq!(resolve_kl(&s, 8, false, false, false).0, KlEstimator::Knn);
        assert_eq!(
            resolve_kl(&s, 9, false, false, false).0,
            KlEstimator::Gaussian
        );
        // non-linear layers keep kNN at every rank
        assert_eq!(resolve_kl(&s, 64, false, true, false).0, KlEstimator::Knn);
        // a linear layer with dropout masks (or after one) is no Gaussian either
        assert_eq!(resolve_kl(&s, 64, false, false, true).0, KlEstimator::Knn);
        let g = MetricsSpec {
            kl: KlEstimator::Gaussian,
            ..s
        };
        assert_eq!(
            resolve_kl(&g, 2, true, true, false).0,
            KlEstimator::Gaussian
        );
    }

    #[test]
    fn smoothed_sinkhorn_and_information_never_panic_on_degenerate_clouds() {
        let dev = device();
        // all points equal: KL 0, W1 0, I(T;Y) 0
        let same = cloud(vec![1.5; 40], 20, 2, [vec![0; 10], vec![1; 10]].concat(), 2);
        let out = layer_divergence(&same, &same, &spec(), LayerContext::default(), &dev, 1);
        assert_eq!((out.kl.value, out.w1.value), (0.0, 0.0), "{out:?}");
        let mi = label_information(&same, LayerContext::default(), &spec(), &dev, 1);
        assert_eq!(mi.value, 0.0, "{mi:?}");
        // a constant column next to a varying one: the span drops it
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let varying = normal(60, 1, 0.0, 1.0, &mut rng);
        let data: Vec<f32> = varying.data.iter().flat_map(|v| [*v as f32, 7.0]).collect();
        let c = cloud(data, 60, 2, vec![0; 60], 1);
        let out = layer_divergence(&c, &c, &spec(), LayerContext::default(), &dev, 1);
        assert!(out.kl.error.is_none() && out.w1.error.is_none(), "{out:?}");
        assert_eq!(out.rank, 1);
        assert!(
            out.w1.value.abs() < 1e-9,
            "identical clouds: {}",
            out.w1.value
        );
        // NaN: an error naming it, for the divergences and both informations
        let mut nan = vec![0.5f32; 40];
        nan[3] = f32::NAN;
        let bad = cloud(nan, 20, 2, vec![0; 20], 1);
        let out = layer_divergence(&bad, &bad, &spec(), LayerContext::default(), &dev, 1);
        assert!(out.kl.error.as_deref().unwrap().contains("non-finite"));
        assert!(out.w1.error.is_some());
        assert!(
            label_information(&bad, LayerContext::default(), &spec(), &dev, 1)
                .error
                .is_some()
        );
        assert!(input_information(&bad, 1, 0.5, &spec(), &dev, 1)
            .error
            .is_some());
        // groups that do not divide the points, and a pre-noise cloud of other examples
        assert!(input_information(&same, 3, 0.5, &spec(), &dev, 1)
            .error
            .is_some());
        let other = cloud(vec![0.0; 40], 20, 2, vec![1; 20], 2);
        let noise = NoisyLayer {
            beta: 0.5,
            train_pre: &other,
            test_pre: &other,
        };
        let out = layer_divergence(
            &same,
            &same,
            &spec(),
            LayerContext {
                noise: Some(noise),
                nonlinear: false,
                masked: false,
                halves: None,
            },
            &dev,
            1,
        );
        assert!(out.kl.error.as_deref().unwrap().contains("same examples"));
        // a class present in training but absent from the test cloud: infinite, an error
        let tr = cloud(vec![0.0, 1.0, 2.0, 3.0], 4, 1, vec![0, 0, 1, 1], 2);
        let te = cloud(vec![0.0, 1.0, 2.0, 3.0], 4, 1, vec![0, 0, 0, 0], 2);
        let out = layer_divergence(&tr, &te, &spec(), LayerContext::default(), &dev, 1);
        assert!(out.kl.error.as_deref().unwrap().contains("class 1"));
        // smoothed KL without any β
        let no_beta = MetricsSpec {
            beta: None,
            ..spec()
        };
        let out = layer_divergence(&c, &c, &no_beta, LayerContext::default(), &dev, 1);
        assert!(
            out.kl.error.as_deref().unwrap().contains("beta"),
            "{:?}",
            out.kl.error
        );
    }
}
