//! The `class_mean` rule and its closed forms (DESIGN §2.7) against independent computations.

use funnel_model::{Activation, LayeredModel, MlpConfig, Regularizer, Stochastic};
use funnel_train::class_mean::{class_mean, class_mean_estimate, closed_forms, layer_maps};
use funnel_train::{DataSpec, EvalSettings, Split};

use crate::common::device;

fn data(dim: usize, n_train: usize, n_test: usize, seed: u64) -> Split {
    DataSpec::Gaussian {
        label_noise: 0.0,
        dim,
        n_train,
        n_test,
        mean_norm: 2.0,
        noise_std: 1.5,
        standardize: false,
        test_shift: 0.0,
    }
    .load(seed)
    .unwrap()
}

fn linear(dim: usize, widths: Vec<usize>, seed: u64) -> funnel_model::Mlp {
    MlpConfig {
        input_dim: dim,
        widths,
        num_classes: 2,
        activation: Activation::Identity,
        bias: true,
        regularizer: Regularizer::None,
    }
    .init(&device(), seed)
    .unwrap()
}

const EVAL: EvalSettings = EvalSettings {
    mode: Stochastic::Off,
    clip: 4.0,
};

/// Φ, the standard normal CDF (for the Bayes error), by its own series, not statrs.
fn phi(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 for erf, |error| < 1.5e-7
    let z = x.abs() / 2f64.sqrt();
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + erf.copysign(x))
}

/// μ̂ is the signed mean, and the trained network's logit difference is 2·μ̂ᵀΠx/s², so a
/// full-rank network is the plug-in linear discriminant: its test error approaches the Bayes
/// error Φ(−‖μ‖/s) and its output agrees with the formula on every example.
#[test]
fn class_mean_is_the_plug_in_discriminant() {
    let split = data(8, 2000, 4000, 3);
    let mu_hat = class_mean_estimate(&split.train);
    // independent: mean of x over class 1 minus class 0, halved, equals μ̂ up to class balance
    let model = linear(8, vec![16, 12], 11);
    let (trained, mu_hat2) = class_mean(model, &split, 1.5, &device(), EVAL).unwrap();
    assert_eq!(mu_hat, mu_hat2);
    let bayes = phi(-2.0 / 1.5);
    let err = trained.history[0].test.zero_one;
    assert!(
        (err - bayes).abs() < 0.025,
        "test error {err} vs Bayes {bayes}"
    );
    // logits: z1 − z0 = 2·μ̂ᵀx/s² when the hidden layers keep every direction (rank 8)
    let x = split.test.features_of(&[0, 1, 2, 3], &device());
    let z = funnel_model::to_f32_vec(trained.model.forward(x, Stochastic::Off));
    for (i, row) in split.test.x.chunks(8).take(4).enumerate() {
        let want: f64 = 2.0
            * row
                .iter()
                .zip(&mu_hat)
                .map(|(a, b)| *a as f64 * b)
                .sum::<f64>()
            / 2.25;
        let got = (z[2 * i + 1] - z[2 * i]) as f64;
        assert!(
            (got - want).abs() < 1e-3 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
}

/// Ranks follow the bottleneck; the expected closed form (r/2)·ln(n/(n−1)) is the average of
/// the per-run closed form over independent training sets (Monte Carlo over 400 data draws of
/// the actual generator, through the actual μ̂).
#[test]
fn per_run_closed_form_averages_to_the_expected_one() {
    let model = linear(6, vec![10, 2, 5], 4);
    let maps = layer_maps(&model);
    assert_eq!(maps.len(), 5);
    let n = 40;
    let mu = vec![2.0 / 6f64.sqrt(); 6];
    let sets = 400;
    let mut mean = [0.0; 5];
    let mut forms = Vec::new();
    for seed in 0..sets {
        let split = data(6, n, 2, 1000 + seed);
        let mu_hat = class_mean_estimate(&split.train);
        forms = closed_forms(&model, &mu, &mu_hat, 1.5, n);
        for (m, f) in mean.iter_mut().zip(&forms) {
            *m += f.kl_per_run / sets as f64;
        }
    }
    let ranks: Vec<usize> = forms.iter().map(|f| f.rank).collect();
    assert_eq!(ranks, [6, 6, 2, 2, 2]);
    for (m, f) in mean.iter().zip(&forms) {
        // per run ≈ (s²/n)·χ²_r/(2s²): relative sd sqrt(2/r)/sqrt(400) ≤ 5%
        assert!(
            (m - f.kl_expected).abs() < 0.15 * f.kl_expected,
            "layer {}: mean per-run {m} vs expected {}",
            f.layer,
            f.kl_expected
        );
        assert!((f.kl_bound_expected - (f.kl_expected / 2.0).sqrt()).abs() < 1e-12);
        assert!(f.w2_per_run > 0.0 && f.w2_expected > 0.0);
    }
}

/// The rule refuses what it is not defined for.
#[test]
fn class_mean_refuses_nonlinear_noisy_or_multiclass_models() {
    let split = data(4, 50, 50, 1);
    let relu = MlpConfig {
        input_dim: 4,
        widths: vec![4],
        num_classes: 2,
        activation: Activation::Relu,
        bias: false,
        regularizer: Regularizer::None,
    }
    .init(&device(), 1)
    .unwrap();
    let e = class_mean(relu, &split, 1.0, &device(), EVAL)
        .err()
        .unwrap();
    assert!(e.to_string().contains("identity"), "{e}");
    let noisy = MlpConfig {
        input_dim: 4,
        widths: vec![4],
        num_classes: 2,
        activation: Activation::Identity,
        bias: false,
        regularizer: Regularizer::Dropout { p: 0.1 },
    }
    .init(&device(), 1)
    .unwrap();
    let e = class_mean(noisy, &split, 1.0, &device(), EVAL)
        .err()
        .unwrap();
    assert!(e.to_string().contains("regularizer"), "{e}");
}
