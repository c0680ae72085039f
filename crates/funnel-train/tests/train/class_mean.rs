//! The `class_mean` rule and its closed forms (DESIGN §2.7) against independent computations.

use funnel_model::{Activation, LayeredModel, MlpConfig, Regularizer, Stochastic};
use funnel_train::class_mean::{class_mean, class_mean_estimate, closed_forms, layer_maps};
use funnel_train::readout::{readout_expected_q, readout_q_over_sigma2};
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

/// Ranks follow the bottleneck; the expected closed forms are the average of the per-run
/// closed form over independent training sets (Monte Carlo over 400 data draws of the actual
/// generator, trained by the actual rule, through the actual μ̂): (r/2)·ln(n/(n−1)) at the
/// data-independent layers, the quadrature at the read-out, whose direction is Π_M μ̂.
#[test]
fn per_run_closed_form_averages_to_the_expected_one() {
    let model = linear(6, vec![10, 3, 5], 4);
    let maps = layer_maps(&model);
    assert_eq!(maps.len(), 5);
    let n = 20;
    // a small ‖μ‖ against σ = s/√n, where the read-out differs most from (r_L/2)·ln(n/(n−1))
    let mu = vec![0.3 / 6f64.sqrt(); 6];
    let split_of = |seed| {
        DataSpec::Gaussian {
            label_noise: 0.0,
            dim: 6,
            n_train: n,
            n_test: 2,
            mean_norm: 0.3,
            noise_std: 1.5,
            standardize: false,
            test_shift: 0.0,
        }
        .load(seed)
        .unwrap()
    };
    let sets = 400;
    let mut mean = [0.0; 5];
    let mut forms = Vec::new();
    for seed in 0..sets {
        let split = split_of(1000 + seed);
        let (trained, mu_hat) = class_mean(model.clone(), &split, 1.5, &device(), EVAL).unwrap();
        forms = closed_forms(&trained.model, &mu, &mu_hat, 1.5, n);
        for (m, f) in mean.iter_mut().zip(&forms) {
            *m += f.kl_per_run / sets as f64;
        }
    }
    let ranks: Vec<usize> = forms.iter().map(|f| f.rank).collect();
    assert_eq!(ranks, [6, 6, 3, 3, 1]);
    let readout: Vec<bool> = forms.iter().map(|f| f.readout).collect();
    assert_eq!(readout, [false, false, false, false, true]);
    let last = &forms[4];
    let old = 0.5 * (n as f64 / (n as f64 - 1.0)).ln();
    // the read-out's expectation is well above the data-independent formula here
    assert!(
        last.kl_expected > 1.5 * old,
        "{} vs {old}",
        last.kl_expected
    );
    for (m, f) in mean.iter().zip(&forms) {
        // per run ≈ (s²/n)·χ²_r/(2s²) (at the read-out a mixture up to r = 3 of them):
        // relative sd ≤ sqrt(2)/sqrt(400) ≈ 7%
        assert!(
            (m - f.kl_expected).abs() < 0.2 * f.kl_expected,
            "layer {}: mean per-run {m} vs expected {}",
            f.layer,
            f.kl_expected
        );
        assert!((f.kl_bound_expected - (f.kl_expected / 2.0).sqrt()).abs() < 1e-12);
        assert!(f.w2_per_run > 0.0 && f.w2_expected > 0.0);
    }
    // the old formula is outside the Monte Carlo's reach at the read-out
    assert!((mean[4] - old).abs() > 0.3 * old, "{} vs {old}", mean[4]);
}

/// E[(uᵀ(μ̂ − μ))²]/σ² by Monte Carlo of the (a, b) form, independent of the quadrature's polar
/// form: a ~ N(0, 1), b ~ χ²_{r−1}, Q = ((ρ + a)·a + b)²/((ρ + a)² + b). Mean and standard error.
fn monte_carlo_q(r: usize, rho: f64, draws: usize, seed: u64) -> (f64, f64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut sum, mut sum2) = (0.0, 0.0);
    for _ in 0..draws {
        let a: f64 = StandardNormal.sample(&mut rng);
        let b: f64 = (1..r)
            .map(|_| {
                let g: f64 = StandardNormal.sample(&mut rng);
                g * g
            })
            .sum();
        let c = rho + a;
        let q = (c * a + b).powi(2) / (c * c + b);
        sum += q;
        sum2 += q * q;
    }
    let m = sum / draws as f64;
    let var = (sum2 / draws as f64 - m * m) * draws as f64 / (draws as f64 - 1.0);
    (m, (var / draws as f64).sqrt())
}

/// The read-out quadrature against a seeded Monte Carlo of 10⁶ draws per case, within 4
/// standard errors (a false alarm has probability ≈ 6e-5 per case), over ranks 2 (b is χ²_1,
/// the density of ‖ε_⊥‖ does not vanish at 0), 3, 8, 16 and ρ from below 1 (the near-singular
/// region ‖m‖ + a ≈ 0 carries mass) to 10.6 (d = 16, ‖μ‖ = 1.5, n = 50).
#[test]
fn readout_quadrature_agrees_with_monte_carlo() {
    for (i, &(r, rho)) in [
        (2usize, 0.3),
        (2, 1.0),
        (3, 0.8),
        (3, 2.5),
        (8, 1.5),
        (16, 0.5),
        (16, 10.606_601_717_798_213),
        (16, 21.213_203_435_596_43),
        (16, 60.0),
    ]
    .iter()
    .enumerate()
    {
        let (q, mass) = readout_q_over_sigma2(r, rho);
        let (mc, se) = monte_carlo_q(r, rho, 1_000_000, 77 + i as u64);
        eprintln!("r = {r}, ρ = {rho}: quadrature {q:.6} (mass − 1 = {:.1e}), Monte Carlo {mc:.6} ± {se:.6}", mass - 1.0);
        assert!((mass - 1.0).abs() < 1e-12, "mass {mass}");
        assert!(
            (q - mc).abs() < 4.0 * se,
            "r = {r}, ρ = {rho}: {q} vs {mc} ± {se}"
        );
    }
}

/// r = 1 recovers the old formula exactly; and the factors DESIGN §2.7 quotes from a Monte
/// Carlo (2.7×, 1.45×, 1.07× of r_L·s²/n at n = 50, 200, 1600) are E[Q]/σ² for a full-rank
/// hidden product (r = 16) with ‖Π_M μ‖ = ‖μ‖ = 1.5, s = 1: the linear-gaussian study's
/// widths [32, 16] (with a rank-r < 16 bottleneck the factors are smaller: 1.22, 1.06, 1.01 at
/// r = 4 with ‖Π_M μ‖² = (r/16)·‖μ‖²). The quadrature gives 2.684, 1.455, 1.058: DESIGN's
/// 2.7 and 1.45 to their two digits; its 1.07 at n = 1600 is 1% high, within a small Monte
/// Carlo's error (the 10⁶-draw Monte Carlo of the test above agrees with 1.058 at ρ = 60).
/// r = 2 has a closed form the quadrature reproduces: E Q/σ² = 1 + exp(−ρ²/2).
#[test]
fn readout_expectation_special_cases_and_design_factors() {
    for rho in [0.1, 1.0, 7.0] {
        assert_eq!(readout_q_over_sigma2(1, rho).0, 1.0);
        let (q2, _) = readout_q_over_sigma2(2, rho);
        let want = 1.0 + (-rho * rho / 2.0).exp();
        assert!((q2 - want).abs() < 1e-9, "r = 2, ρ = {rho}: {q2} vs {want}");
    }
    let (s, n) = (1.3, 37usize);
    let q = readout_expected_q(1, 0.8, s, n);
    assert!((q - s * s / n as f64).abs() < 1e-15);
    let want = [(50usize, 2.6841), (200, 1.4545), (1600, 1.0581)];
    for (n, factor) in want {
        let f = readout_expected_q(16, 1.5, 1.0, n) * n as f64;
        eprintln!("n = {n}: E Q / (s²/n) = {f:.4}");
        assert!((f - factor).abs() < 5e-4, "n = {n}: {f} vs {factor}");
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
