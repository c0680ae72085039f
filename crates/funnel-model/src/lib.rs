//! Layered burn models for funnel.
//!
//! * [`Mlp`] — linear (`identity`) and non-linear multi-layer perceptrons built from an
//!   [`MlpConfig`], with optional stochastic hidden layers ([`Regularizer`]).
//! * [`LayeredModel`] — the hook point: `forward_layers` returns **every** layer, index 0 the
//!   input and index L the logits, so a probe can capture train and test representations.
//!
//! burn 0.22 has no backend generics: tensors live on a run-time `Device`, which the caller
//! chooses (and seeds) once.

mod activation;
mod layered;
mod mlp;
mod regularizer;

pub use activation::Activation;
pub use layered::{LayerInfo, LayerRole, LayeredModel};
pub use mlp::{force_init, Mlp, MlpConfig};
pub use regularizer::{Regularizer, Stochastic};

use burn::tensor::Tensor;

/// An invalid model description; `field` names the offending configuration field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    pub field: &'static str,
    pub message: String,
}

impl ModelError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Reads a float tensor back to the host as `f32`, row-major.
///
/// Panics only when the backend cannot read memory back, which is a broken installation, not
/// bad user input.
pub fn to_f32_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("backend failed to read a float tensor back to the host")
}

/// Derives an independent, reproducible seed for one random stream (data, init, shuffling,
/// capture, bootstrap, …) from the run's seed, so that adding a stream never shifts another.
/// SplitMix64 finaliser over the seed and an FNV-1a hash of the stream's name.
pub fn derive_seed(seed: u64, stream: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = seed ^ h.rotate_left(17);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Splits `total` over groups in proportion to their `sizes` by largest remainders, so the
/// parts sum to exactly `min(total, Σ sizes)` and no part exceeds its group's size. Used to
/// stratify subsamples and splits by class.
pub fn apportion(sizes: &[usize], total: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let total = total.min(n);
    let quotas: Vec<f64> = sizes
        .iter()
        .map(|&s| s as f64 * total as f64 / n as f64)
        .collect();
    let mut take: Vec<usize> = quotas
        .iter()
        .zip(sizes)
        .map(|(q, &s)| (q.floor() as usize).min(s))
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor()))
    });
    let mut left = total - take.iter().sum::<usize>();
    while left > 0 {
        let before = left;
        for &g in &order {
            if left > 0 && take[g] < sizes[g] {
                take[g] += 1;
                left -= 1;
            }
        }
        if left == before {
            break; // cannot happen: total ≤ Σ sizes
        }
    }
    take
}

#[cfg(test)]
mod tests {
    use super::{apportion, derive_seed};

    /// Outputs of `derive_seed` as it stood before it moved to `funnel-core`: every random
    /// stream of a run depends on them, so they must never change.
    #[test]
    fn derive_seed_outputs_are_pinned() {
        for (seed, stream, want) in [
            (0u64, "", 0x60a6_e4f0_6933_f022u64),
            (0, "data", 0xf66c_f0c4_be2a_565a),
            (42, "init", 0xf601_6ccf_9b08_d226),
            (42, "layer-3", 0x29e6_89b0_31e1_6e6f),
            (7, "bootstrap", 0x7a47_480b_6ac6_92c6),
            (u64::MAX, "permutation", 0x2b5f_ce55_4221_4796),
            (123_456_789, "mi-ty", 0x406b_a0f1_bab7_fbf5),
            (1, "λ-ünïcode", 0x0c2b_e350_e96c_c52d),
        ] {
            assert_eq!(
                derive_seed(seed, stream),
                want,
                "derive_seed({seed}, {stream:?})"
            );
        }
    }

    #[test]
    fn apportion_is_proportional_exact_and_bounded() {
        assert_eq!(apportion(&[300, 610, 90], 101), vec![30, 62, 9]);
        assert_eq!(apportion(&[1000, 2], 250), vec![250, 0]);
        assert_eq!(apportion(&[5, 5], 100), vec![5, 5]);
        assert_eq!(apportion(&[0, 0], 3), vec![0, 0]);
        for (sizes, total) in [
            (vec![7usize, 1, 1, 13], 9usize),
            (vec![3, 3, 3], 4),
            (vec![1, 0, 2], 2),
        ] {
            let t = apportion(&sizes, total);
            assert_eq!(t.iter().sum::<usize>(), total);
            assert!(t.iter().zip(&sizes).all(|(a, s)| a <= s));
        }
    }
}
