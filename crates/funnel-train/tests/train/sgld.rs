//! SGLD against the Gibbs posterior it approximates, enumerated on a grid (DESIGN §2.8).
//!
//! The model is a linear classifier of a 1-D input with two logits and no bias, W = (w0, w1).
//! Its loss depends only on a = (w1 − w0)/√2; the orthogonal b = (w0 + w1)/√2 sees only the
//! prior. So the Gibbs posterior ∝ N(w; 0, σ²I)·exp(−γ·L_S(w)) factorises into b ~ N(0, σ²) and
//! a density on a that a fine grid enumerates exactly (up to the grid step).

use burn::prelude::*;
use funnel_model::{to_f32_vec, Activation, MlpConfig, Regularizer};
use funnel_train::{sgld_step, Algorithm, Dataset, TrainSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::common::serial;

const CLIP: f64 = 4.0;
const SIGMA: f64 = 1.0;

/// min(CE, c)/c of the logit difference z for label y ∈ {0, 1}, computed independently of burn.
fn bounded_loss(z: f64, y: usize) -> f64 {
    let signed = if y == 1 { z } else { -z };
    let ce = (1.0 + (-signed).exp()).ln(); // log(1 + e^{−y·z})
    ce.min(CLIP) / CLIP
}

/// The enumerated posterior of a on `grid` (normalised masses).
fn gibbs_on_grid(xs: &[f64], ys: &[usize], gamma: f64, grid: &[f64]) -> Vec<f64> {
    let n = xs.len() as f64;
    let logw: Vec<f64> = grid
        .iter()
        .map(|&a| {
            let w_diff = a * 2f64.sqrt(); // w1 − w0
            let risk: f64 = xs
                .iter()
                .zip(ys)
                .map(|(&x, &y)| bounded_loss(w_diff * x, y))
                .sum::<f64>()
                / n;
            -a * a / (2.0 * SIGMA * SIGMA) - gamma * risk
        })
        .collect();
    let max = logw.iter().cloned().fold(f64::MIN, f64::max);
    let w: Vec<f64> = logw.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| v / total).collect()
}

/// Total variation between a sample and grid masses, over `bins` bins of equal grid mass.
fn tv(samples: &[f64], grid: &[f64], mass: &[f64], bins: usize) -> f64 {
    // bin edges at the grid distribution's quantiles
    let mut edges = Vec::new();
    let mut acc = 0.0;
    for (a, m) in grid.iter().zip(mass) {
        acc += m;
        if edges.len() + 1 < bins && acc >= (edges.len() + 1) as f64 / bins as f64 {
            edges.push(*a);
        }
    }
    let bin_of = |v: f64| edges.iter().take_while(|&&e| v > e).count();
    let mut expected = vec![0.0; bins];
    for (a, m) in grid.iter().zip(mass) {
        expected[bin_of(*a)] += m;
    }
    let mut observed = vec![0.0; bins];
    for &v in samples {
        observed[bin_of(v)] += 1.0 / samples.len() as f64;
    }
    0.5 * observed
        .iter()
        .zip(&expected)
        .map(|(o, e)| (o - e).abs())
        .sum::<f64>()
}

#[test]
fn sgld_samples_the_enumerated_gibbs_posterior() {
    // burn's RNG is shared with the other modules' tests in this binary
    let _rng = serial();
    // 24 points, X | Y ~ N(±0.7, 1)
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 24;
    let ys: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let xs: Vec<f64> = ys
        .iter()
        .map(|&y| {
            let z: f64 = StandardNormal.sample(&mut rng);
            if y == 1 {
                0.7 + z
            } else {
                -0.7 + z
            }
        })
        .collect();
    let data = Dataset::new(xs.iter().map(|&v| v as f32).collect(), ys.clone(), 1, 2);
    let gamma = 30.0;
    let spec = TrainSpec {
        algorithm: Algorithm::Sgld,
        lr: 0.01,
        gamma: Some(gamma),
        prior_std: Some(SIGMA),
        ..TrainSpec::default()
    };
    spec.validate().unwrap();

    let device = Device::flex();
    device.seed(17);
    let ad = device.clone().autodiff();
    let mut model = MlpConfig {
        input_dim: 1,
        widths: vec![],
        num_classes: 2,
        activation: Activation::Identity,
        bias: false,
        regularizer: Regularizer::None,
    }
    .init(&ad, 3)
    .unwrap();
    let mut optimizer = spec.optimizer();
    let all: Vec<usize> = (0..n).collect();
    let (burn_in, steps, thin) = (2_000, 60_000, 10);
    let (mut a_samples, mut b_samples) = (Vec::new(), Vec::new());
    for step in 0..burn_in + steps {
        let x = data.features_of(&all, &ad);
        let y = data.labels_of(&all, &ad);
        (model, _) = sgld_step(model, &mut optimizer, spec.lr, gamma, CLIP, x, y);
        if step >= burn_in && step % thin == 0 {
            let w = to_f32_vec(model.linears()[0].weight.val());
            let (w0, w1) = (w[0] as f64, w[1] as f64);
            a_samples.push((w1 - w0) / 2f64.sqrt());
            b_samples.push((w0 + w1) / 2f64.sqrt());
        }
    }

    let grid: Vec<f64> = (0..6001).map(|i| -6.0 + 12.0 * i as f64 / 6000.0).collect();
    let mass = gibbs_on_grid(&xs, &ys, gamma, &grid);
    let total: f64 = mass.iter().sum();
    assert!((total - 1.0).abs() < 1e-12, "the enumeration normalises");
    let d = tv(&a_samples, &grid, &mass, 20);
    // the wrong temperature is far from the sample: the check can tell them apart
    let d_cold = tv(
        &a_samples,
        &grid,
        &gibbs_on_grid(&xs, &ys, 4.0 * gamma, &grid),
        20,
    );
    let d_hot = tv(
        &a_samples,
        &grid,
        &gibbs_on_grid(&xs, &ys, gamma / 4.0, &grid),
        20,
    );
    eprintln!("TV(SGLD, Gibbs γ) = {d:.4}; at 4γ {d_cold:.4}; at γ/4 {d_hot:.4}");
    assert!(d < 0.06, "SGLD is {d} in TV from the enumerated posterior");
    assert!(
        d_cold > 2.0 * d && d_hot > 2.0 * d,
        "{d_cold} {d_hot} vs {d}"
    );
    // the prior-only direction: b ~ N(0, σ²)
    let m = b_samples.iter().sum::<f64>() / b_samples.len() as f64;
    let v = b_samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / b_samples.len() as f64;
    assert!(
        m.abs() < 0.15 && (v - SIGMA * SIGMA).abs() < 0.15,
        "b: mean {m}, var {v}"
    );
}

#[test]
fn sgld_settings_are_checked() {
    let base = TrainSpec {
        algorithm: Algorithm::Sgld,
        ..TrainSpec::default()
    };
    let e = base.validate().unwrap_err().to_string();
    assert!(e.contains("gamma"), "{e}");
    for (spec, key) in [
        (
            TrainSpec {
                gamma: Some(-1.0),
                ..base.clone()
            },
            "gamma",
        ),
        (
            TrainSpec {
                gamma: Some(1.0),
                prior_std: Some(0.0),
                ..base.clone()
            },
            "prior_std",
        ),
        (
            TrainSpec {
                gamma: Some(1.0),
                weight_decay: 0.1,
                ..base.clone()
            },
            "weight_decay",
        ),
        (
            TrainSpec {
                gamma: Some(1.0),
                momentum: Some(0.5),
                ..base.clone()
            },
            "momentum",
        ),
        (
            TrainSpec {
                gamma: Some(1.0),
                ..TrainSpec::default()
            },
            "gamma",
        ),
        (
            TrainSpec {
                prior_std: Some(1.0),
                ..TrainSpec::default()
            },
            "prior_std",
        ),
    ] {
        let e = spec.validate().unwrap_err().to_string();
        assert!(e.starts_with(key), "{key}: {e}");
    }
}
