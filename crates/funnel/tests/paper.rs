//! The paper's closed forms against funnel's estimators (DESIGN §2.7).

use burn::prelude::*;
use funnel_metrics::probe::capture;
use funnel_metrics::{layer_divergence, KlEstimator, LayerContext, MetricsSpec, W1Estimator};
use funnel_model::{Activation, MlpConfig, Regularizer, Stochastic};
use funnel_train::class_mean::{class_mean, closed_forms};
use funnel_train::{DataSpec, Dataset, EvalSettings};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `m` draws with labels uniform on {0, 1} and X | Y ~ N(±centre, std²·I) (class 1 at +centre).
fn draw(centre: &[f64], std: f64, m: usize, rng: &mut ChaCha8Rng) -> Dataset {
    let d = centre.len();
    let mut x = Vec::with_capacity(m * d);
    let mut y = Vec::with_capacity(m);
    for _ in 0..m {
        let label = rng.random_range(0..2usize);
        let sign = if label == 1 { 1.0 } else { -1.0 };
        for c in centre {
            let z: f64 = StandardNormal.sample(rng);
            x.push((sign * c + std * z) as f32);
        }
        y.push(label);
    }
    Dataset::new(x, y, d, 2)
}

/// D_l is a divergence between the law of a *training* example given the learned weights —
/// X_i | (Y_i, μ̂) ~ N(Y_i·μ̂, (1 − 1/n)s²I) — and a fresh example. Sampling the first law
/// directly (it is Gaussian) and running both through the class-mean network, funnel's Gaussian
/// KL estimator must recover the per-run closed form at every layer, whatever the rank.
#[test]
fn class_mean_estimates_match_the_per_run_closed_form() {
    let device = Device::flex();
    let (dim, n, s) = (6, 60, 1.5);
    let split = DataSpec::Gaussian {
        dim,
        n_train: n,
        n_test: 100,
        mean_norm: 2.0,
        noise_std: s,
        standardize: false,
        test_shift: 0.0,
    }
    .load(8)
    .unwrap();
    let model = MlpConfig {
        input_dim: dim,
        widths: vec![10, 3],
        num_classes: 2,
        activation: Activation::Identity,
        bias: true,
        regularizer: Regularizer::None,
    }
    .init(&device, 5)
    .unwrap();
    let eval = EvalSettings {
        mode: Stochastic::Off,
        clip: 5.0,
    };
    let (trained, mu_hat) = class_mean(model, &split, s, &device, eval).unwrap();
    let mu = &split.info.class_means.as_ref().unwrap()[1];
    let forms = closed_forms(&trained.model, mu, &mu_hat, s, n);
    assert_eq!(
        forms.iter().map(|f| f.rank).collect::<Vec<_>>(),
        [6, 6, 3, 1]
    );

    let m = 40_000;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let conditional = draw(&mu_hat, s * (1.0 - 1.0 / n as f64).sqrt(), m, &mut rng);
    let fresh = draw(mu, s, m, &mut rng);
    let all: Vec<usize> = (0..m).collect();
    let clouds = |d: &Dataset| {
        capture(
            &trained.model,
            d.features_of(&all, &device),
            &d.y,
            2,
            Stochastic::Off,
        )
    };
    let (p, q) = (clouds(&conditional), clouds(&fresh));
    let spec = MetricsSpec {
        kl: KlEstimator::Gaussian,
        w1: W1Estimator::Sliced,
        bootstrap: 8,
        mi: false,
        ..MetricsSpec::default()
    };
    for (l, f) in forms.iter().enumerate() {
        let context = LayerContext {
            noise: None,
            nonlinear: false,
        };
        let div = layer_divergence(&p[l], &q[l], &spec, context, &device, 3 + l as u64);
        let est = div.kl.value - div.kl.label_term;
        eprintln!(
            "layer {l}: rank {}, estimate {est:.5} [{:.5}, {:.5}], closed form {:.5}",
            f.rank, div.kl.lo, div.kl.hi, f.kl_per_run
        );
        assert!(
            (est - f.kl_per_run).abs() < 0.15 * f.kl_per_run + 0.002,
            "layer {l}: estimate {est} vs closed form {}",
            f.kl_per_run
        );
    }
}
