//! Synthetic Gaussian data sets.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{DataInfo, Dataset, Split};

/// Draws `n` examples: label `k` with probability 1/K, features `means[k] + s·N(0, I)`.
fn sample(means: &[Vec<f64>], noise_std: f64, n: usize, rng: &mut ChaCha8Rng) -> Dataset {
    let k = means.len();
    let d = means[0].len();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.random_range(0..k);
        y.push(label);
        for m in &means[label] {
            let z: f64 = StandardNormal.sample(rng);
            x.push((m + noise_std * z) as f32);
        }
    }
    Dataset::new(x, y, d, k)
}

/// Train and test draws from the mixture with class means `means`; the test means are moved
/// by `test_shift` along the first coordinate.
fn mixture(
    means: Vec<Vec<f64>>,
    noise_std: f64,
    n_train: usize,
    n_test: usize,
    test_shift: f64,
    description: String,
    rng: &mut ChaCha8Rng,
) -> Split {
    let train = sample(&means, noise_std, n_train, rng);
    let mut shifted = means.clone();
    for m in &mut shifted {
        m[0] += test_shift;
    }
    let test = sample(&shifted, noise_std, n_test, rng);
    Split {
        train,
        test,
        info: DataInfo {
            description,
            class_means: Some(means),
            noise_std: Some(noise_std),
            ..DataInfo::default()
        },
    }
}

/// The paper's binary mixture: class 0 is Y = −1 (mean −μ), class 1 is Y = +1 (mean +μ), with
/// μ = ‖μ‖/√d·(1, …, 1).
pub(super) fn binary_gaussian(
    dim: usize,
    n_train: usize,
    n_test: usize,
    mean_norm: f64,
    noise_std: f64,
    test_shift: f64,
    rng: &mut ChaCha8Rng,
) -> Split {
    let c = mean_norm / (dim as f64).sqrt();
    let mut description =
        format!("binary Gaussian mixture, d={dim}, ‖μ‖={mean_norm}, s={noise_std}");
    if test_shift != 0.0 {
        description.push_str(&format!(", test means shifted by {test_shift}·e_1"));
    }
    mixture(
        vec![vec![-c; dim], vec![c; dim]],
        noise_std,
        n_train,
        n_test,
        test_shift,
        description,
        rng,
    )
}

/// K classes with means drawn uniformly on the sphere of radius `mean_norm`.
pub(super) fn multiclass_gaussian(
    classes: usize,
    dim: usize,
    n_train: usize,
    n_test: usize,
    mean_norm: f64,
    noise_std: f64,
    rng: &mut ChaCha8Rng,
) -> Split {
    let means: Vec<Vec<f64>> = (0..classes)
        .map(|_| {
            let v: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut *rng)).collect();
            let norm = v
                .iter()
                .map(|a| a * a)
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            v.iter().map(|a| a * mean_norm / norm).collect()
        })
        .collect();
    let description =
        format!("{classes}-class Gaussian, d={dim}, ‖μ_k‖={mean_norm}, s={noise_std}");
    mixture(means, noise_std, n_train, n_test, 0.0, description, rng)
}
