//! Stochastic layers: Dropout, DropConnect and Gaussian noise injection (DESIGN §2.6).
//!
//! burn's own `Dropout` is a no-op unless its input lives on an autodiff device in training
//! mode, but the paper's *stochastic networks* keep their randomness when they are measured.
//! So funnel draws its own masks and noise, switched by [`Stochastic`] instead of by the device.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::Activation;

/// Whether stochastic layers draw fresh randomness in a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stochastic {
    /// Masks and noise are drawn at every pass (training, and measuring the paper's stochastic
    /// networks).
    Active,
    /// Stochastic layers are the identity (deterministic evaluation). Inverted scaling during
    /// training keeps the expected activation the same, so no rescaling is needed here.
    Off,
}

impl Stochastic {
    pub fn is_active(self) -> bool {
        self == Stochastic::Active
    }
}

/// The regularizer applied to every hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Regularizer {
    #[default]
    None,
    /// Inverted dropout on the layer's units: each unit is zeroed with probability `p`, kept
    /// units are scaled by 1/(1−p).
    Dropout { p: f64 },
    /// DropConnect on the layer's weights: every weight is zeroed with probability `p`,
    /// independently for every example, kept weights scaled by 1/(1−p).
    #[serde(rename = "dropconnect")]
    DropConnect { p: f64 },
    /// Additive Gaussian noise N(0, std²·I) after the activation.
    GaussianNoise { std: f64 },
}

impl Regularizer {
    pub fn name(&self) -> &'static str {
        match self {
            Regularizer::None => "none",
            Regularizer::Dropout { .. } => "dropout",
            Regularizer::DropConnect { .. } => "dropconnect",
            Regularizer::GaussianNoise { .. } => "gaussian_noise",
        }
    }

    /// Short human description, e.g. `dropout p=0.1`.
    pub fn describe(&self) -> String {
        match self {
            Regularizer::None => "none".into(),
            Regularizer::Dropout { p } => format!("dropout p={p}"),
            Regularizer::DropConnect { p } => format!("dropconnect p={p}"),
            Regularizer::GaussianNoise { std } => format!("gaussian_noise std={std}"),
        }
    }

    pub fn is_stochastic(&self) -> bool {
        match *self {
            Regularizer::None => false,
            Regularizer::Dropout { p } | Regularizer::DropConnect { p } => p > 0.0,
            Regularizer::GaussianNoise { std } => std > 0.0,
        }
    }

    /// The strong data-processing coefficient η of a layer with this regularizer (DESIGN §2.6):
    /// an upper bound, over all weights, of KL(P_out‖Q_out)/KL(P_in‖Q_in) for the channel from
    /// the layer's input (`d_in` units) to its output (`d_out` units), through Dobrushin's
    /// TV-contraction coefficient sup_{x,x'} TV(K(·|x), K(·|x')):
    /// * Dropout: every unit dropped (probability p^d_out) makes the output 0 whatever the
    ///   input, so η ≤ 1 − p^d_out;
    /// * DropConnect: every weight dropped (p^(d_in·d_out)) makes it act(b), so
    ///   η ≤ 1 − p^(d_in·d_out);
    /// * Gaussian noise N(0, β²I) after an activation with values in a cube of half-width a:
    ///   two noise-free outputs are at most 2a·√d_out apart, so
    ///   η ≤ TV(N(0, β²), N(2a√d, β²)) = erf(a·√d_out / (β·√2)); η = 1 for unbounded activations;
    /// * no regularizer, or one that is inactive (p = 0, β = 0): η = 1 (a deterministic map
    ///   need not contract).
    ///
    /// The caller passes η = 1 when stochastic layers are off at measurement: the measured
    /// network is then deterministic.
    pub fn sdpi_eta(&self, d_in: usize, d_out: usize, activation: Activation) -> f64 {
        // p^k as exp(k·ln p): k can be d_in·d_out ≫ i32::MAX for `powi`; p = 0 gives exp(−∞) = 0
        let all_dropped = |p: f64, k: f64| (k * p.ln()).exp();
        match *self {
            Regularizer::None => 1.0,
            Regularizer::Dropout { p } => 1.0 - all_dropped(p, d_out as f64),
            Regularizer::DropConnect { p } => 1.0 - all_dropped(p, d_in as f64 * d_out as f64),
            Regularizer::GaussianNoise { std } if std > 0.0 => match activation.range_radius() {
                Some(a) => {
                    statrs::function::erf::erf(a * (d_out as f64).sqrt() / (std * 2f64.sqrt()))
                }
                None => 1.0,
            },
            Regularizer::GaussianNoise { .. } => 1.0,
        }
    }

    /// Checks the parameter range; the message names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Regularizer::None => Ok(()),
            Regularizer::Dropout { p } | Regularizer::DropConnect { p } => {
                if p.is_finite() && (0.0..1.0).contains(&p) {
                    Ok(())
                } else {
                    Err(("p", format!("must be in [0, 1), got {p}")))
                }
            }
            Regularizer::GaussianNoise { std } => {
                if std.is_finite() && std >= 0.0 {
                    Ok(())
                } else {
                    Err(("std", format!("must be finite and ≥ 0, got {std}")))
                }
            }
        }
    }
}

/// Applies unit-level randomness (Dropout, Gaussian noise) to an activated layer output.
/// DropConnect acts on weights and is applied inside the linear map instead.
pub(crate) fn apply_unit_noise(x: Tensor<2>, reg: Regularizer, mode: Stochastic) -> Tensor<2> {
    if !mode.is_active() {
        return x;
    }
    match reg {
        Regularizer::Dropout { p } if p > 0.0 => {
            let keep = 1.0 - p;
            let mask = x.random_like(Distribution::Bernoulli(keep));
            x * mask * (1.0 / keep)
        }
        Regularizer::GaussianNoise { std } if std > 0.0 => {
            let noise = x.random_like(Distribution::Normal(0.0, std));
            x + noise
        }
        _ => x,
    }
}

/// Elements of the per-example weight tensor `[b, d_in, d_out]` that DropConnect may hold at
/// once; larger batches are processed in sub-batches so memory stays bounded (64 MiB of f32).
const DROPCONNECT_MAX_ELEMENTS: usize = 1 << 24;

/// `x·(M ⊙ W)/(1−p) + b` with an independent Bernoulli(1−p) mask `M` for every example.
pub(crate) fn dropconnect_linear(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    p: f64,
) -> Tensor<2> {
    let [n, d_in] = x.dims();
    let [_, d_out] = weight.dims();
    if n == 0 {
        return Tensor::zeros([0, d_out], &x.device());
    }
    let keep = 1.0 - p;
    let per_example = d_in * d_out;
    let sub = (DROPCONNECT_MAX_ELEMENTS / per_example.max(1)).clamp(1, n.max(1));
    let w3 = weight.unsqueeze::<3>(); // [1, d_in, d_out]
    let mut outs = Vec::with_capacity(n.div_ceil(sub));
    let mut start = 0;
    while start < n {
        let end = (start + sub).min(n);
        let b = end - start;
        let xb = x.clone().narrow(0, start, b).reshape([b, 1, d_in]);
        let mask = Tensor::<3>::random(
            [b, d_in, d_out],
            Distribution::Bernoulli(keep),
            &xb.device(),
        );
        let wb = w3.clone().expand([b, d_in, d_out]) * mask;
        outs.push(xb.matmul(wb).reshape([b, d_out]));
        start = end;
    }
    let mut y = if outs.len() == 1 {
        outs.remove(0)
    } else {
        Tensor::cat(outs, 0)
    };
    y = y * (1.0 / keep);
    match bias {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    /// Coefficients against values computed by hand (DESIGN §2.6).
    #[test]
    fn sdpi_coefficients_match_hand_computed_values() {
        let relu = Activation::Relu;
        // dropout p = 0.5 on 3 units: 1 − 1/8
        close(
            Regularizer::Dropout { p: 0.5 }.sdpi_eta(10, 3, relu),
            0.875,
            1e-15,
        );
        // the deeper-narrower example: N = 8, p = 0.5, L = 1, 2, 4, 8 → (1 − 0.5^(8/L))^L
        let product = |l: usize| {
            let d = 8 / l;
            (0..l)
                .map(|_| Regularizer::Dropout { p: 0.5 }.sdpi_eta(d, d, relu))
                .product::<f64>()
        };
        close(product(1), 0.99609375, 1e-12); // 255/256
        close(product(2), 0.87890625, 1e-12); // (15/16)²
        close(product(4), 0.31640625, 1e-12); // (3/4)⁴
        close(product(8), 0.00390625, 1e-12); // (1/2)⁸
                                              // DropConnect p = 0.5 on a 2 × 3 matrix: 1 − 2⁻⁶; on 1000 × 1000 it is 1 to f64
        close(
            Regularizer::DropConnect { p: 0.5 }.sdpi_eta(2, 3, relu),
            63.0 / 64.0,
            1e-15,
        );
        assert_eq!(
            Regularizer::DropConnect { p: 0.9 }.sdpi_eta(1000, 1000, relu),
            1.0
        );
        // Gaussian noise after tanh (a = 1) on 4 units, β = 2: erf(1·2/(2√2)) = erf(1/√2)
        // = 2Φ(1) − 1 = 0.682689492137…
        close(
            Regularizer::GaussianNoise { std: 2.0 }.sdpi_eta(5, 4, Activation::Tanh),
            0.682_689_492_137_086,
            1e-9, // statrs' erf is good to ~1e-11 here
        );
        // after the sigmoid (a = ½) on 4 units, β = 1: erf(½·2/√2) = 2Φ(1) − 1 as well
        close(
            Regularizer::GaussianNoise { std: 1.0 }.sdpi_eta(5, 4, Activation::Sigmoid),
            0.682_689_492_137_086,
            1e-9, // statrs' erf is good to ~1e-11 here
        );
        // unbounded activations and no regularizer: no contraction
        for act in [Activation::Relu, Activation::Identity, Activation::Gelu] {
            assert_eq!(
                Regularizer::GaussianNoise { std: 1.0 }.sdpi_eta(3, 3, act),
                1.0
            );
        }
        assert_eq!(Regularizer::None.sdpi_eta(3, 3, relu), 1.0);
        assert_eq!(Regularizer::Dropout { p: 0.0 }.sdpi_eta(3, 3, relu), 1.0);
        assert_eq!(
            Regularizer::GaussianNoise { std: 0.0 }.sdpi_eta(3, 3, Activation::Tanh),
            1.0
        );
    }

    /// η is a TV distance: between the kernels of the two farthest inputs it must equal the
    /// Monte-Carlo TV of the actual channel. For dropout on d units the two inputs (1, …, 1) and
    /// (2, …, 2) give outputs that differ unless every unit is dropped, so TV = 1 − p^d exactly.
    #[test]
    fn dropout_coefficient_is_attained_by_the_channel() {
        use rand::{RngExt, SeedableRng};
        let (p, d, n) = (0.6, 3, 200_000);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // P(output of input 1 == output of input 2) = P(all dropped in both) under a coupling
        // with shared masks; TV = 1 − P(the output of input 1 is the zero vector) (the only
        // output the two kernels share)
        let zero = (0..n)
            .filter(|_| (0..d).all(|_| rng.random::<f64>() < p))
            .count() as f64
            / n as f64;
        let tv = 1.0 - zero;
        let eta = Regularizer::Dropout { p }.sdpi_eta(d, d, Activation::Relu);
        let se = (zero * (1.0 - zero) / n as f64).sqrt();
        assert!((tv - eta).abs() < 5.0 * se, "MC TV {tv} vs η {eta}");
    }
}
