//! Element-wise activations and the constants the bounds need from them.

use burn::tensor::activation;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The non-linearity applied after every hidden linear map. `Identity` makes the network a
/// linear DNN (DESIGN §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Identity,
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
}

/// max_x GELU'(x) = Φ(x*) + x*·φ(x*) at x* = √2 (where GELU'' = 0), ≈ 1.128_904_2.
const GELU_LIPSCHITZ: f64 = 1.128_904_2;

impl Activation {
    pub const ALL: [Activation; 5] = [
        Activation::Identity,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "gelu",
        }
    }

    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => x,
            Activation::Relu => activation::relu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Gelu => activation::gelu(x),
        }
    }

    /// The smallest L with |act(a) − act(b)| ≤ L·|a − b| (used in ρ_l, DESIGN §2.4).
    pub fn lipschitz(self) -> f64 {
        match self {
            Activation::Identity | Activation::Relu | Activation::Tanh => 1.0,
            Activation::Sigmoid => 0.25,
            Activation::Gelu => GELU_LIPSCHITZ,
        }
    }

    /// `Some((lo, hi))` when lo ≤ act(x) ≤ hi for all x, `None` for unbounded activations.
    pub fn range(self) -> Option<(f64, f64)> {
        match self {
            Activation::Tanh => Some((-1.0, 1.0)),
            Activation::Sigmoid => Some((0.0, 1.0)),
            Activation::Identity | Activation::Relu | Activation::Gelu => None,
        }
    }

    /// Half the width of the range, a = (hi − lo)/2: every output lies in a cube of side 2a,
    /// so two outputs of d units are at most 2a·√d apart. This is the `a` of the Gaussian-noise
    /// SDPI coefficient erf(a·√d / (β·√2)) (DESIGN §2.6 states it for |act| ≤ a; the half-width
    /// is the same for tanh and half as large, hence tighter, for the sigmoid's (0, 1)).
    pub fn range_radius(self) -> Option<f64> {
        self.range().map(|(lo, hi)| (hi - lo) / 2.0)
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Lipschitz constants must dominate every finite-difference slope of the activation.
    #[test]
    fn lipschitz_constants_bound_numerical_slopes() {
        #[allow(deprecated)]
        let device = burn::tensor::Device::flex();
        let n = 20_001;
        let xs: Vec<f32> = (0..n)
            .map(|i| -10.0 + 20.0 * i as f32 / (n - 1) as f32)
            .collect();
        let h = 20.0 / (n - 1) as f64;
        for act in Activation::ALL {
            let t = Tensor::<1>::from_floats(xs.as_slice(), &device);
            let ys: Vec<f32> = act.apply(t).try_into_vec_as::<f32>().unwrap();
            let max_slope = ys
                .windows(2)
                .map(|w| ((w[1] - w[0]) as f64 / h).abs())
                .fold(0.0, f64::max);
            assert!(
                max_slope <= act.lipschitz() * (1.0 + 1e-2),
                "{act}: slope {max_slope} > {}",
                act.lipschitz()
            );
            // and the constant is tight (within 2%) — a wrong constant would be loose or invalid
            assert!(
                max_slope >= act.lipschitz() * 0.98,
                "{act}: slope {max_slope} too small"
            );
            if let Some((lo, hi)) = act.range() {
                assert!(ys.iter().all(|&y| (lo..=hi).contains(&(y as f64))));
                // and the range is tight: the extremes are approached at ±10
                let (min, max) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &y| {
                    (a.min(y as f64), b.max(y as f64))
                });
                assert!(min - lo < 1e-3 && hi - max < 1e-3, "{act}: range not tight");
            }
        }
    }
}
