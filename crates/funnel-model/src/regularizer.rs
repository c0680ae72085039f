//! Stochastic layers: Dropout, DropConnect and Gaussian noise injection (DESIGN §2.6).
//!
//! burn's own `Dropout` is a no-op unless its input lives on an autodiff device in training
//! mode, but the paper's *stochastic networks* keep their randomness when they are measured.
//! So funnel draws its own masks and noise, switched by [`Stochastic`] instead of by the device.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

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
