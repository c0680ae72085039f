//! Losses on a data set and the measured generalization gap.

use burn::prelude::*;
use funnel_model::{to_f32_vec, LayeredModel, Stochastic};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;

/// Examples per forward pass when evaluating.
pub const EVAL_CHUNK: usize = 4096;

/// Average losses of a model on a data set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    /// Mean cross-entropy of the softmax of the logits (natural log).
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub cross_entropy: f64,
    /// Mean of min(CE, c).
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub cross_entropy_clipped: f64,
    /// Error rate (arg-max prediction ≠ label).
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub zero_one: f64,
    pub n: usize,
}

impl Losses {
    pub fn accuracy(&self) -> f64 {
        1.0 - self.zero_one
    }
}

/// Test − train, in each loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub zero_one: f64,
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub cross_entropy: f64,
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub cross_entropy_clipped: f64,
}

impl Gap {
    pub fn between(train: &Losses, test: &Losses) -> Gap {
        Gap {
            zero_one: test.zero_one - train.zero_one,
            cross_entropy: test.cross_entropy - train.cross_entropy,
            cross_entropy_clipped: test.cross_entropy_clipped - train.cross_entropy_clipped,
        }
    }
}

/// Per-example cross-entropy and correctness from row-major logits `[n, k]`, in f64 with a
/// stable log-sum-exp.
pub fn per_example(logits: &[f32], labels: &[usize], k: usize) -> (Vec<f64>, Vec<bool>) {
    let mut ce = Vec::with_capacity(labels.len());
    let mut correct = Vec::with_capacity(labels.len());
    for (row, &y) in logits.chunks_exact(k).zip(labels) {
        if row.iter().any(|v| !v.is_finite()) {
            // a broken network: no loss, no correct prediction
            ce.push(f64::NAN);
            correct.push(false);
            continue;
        }
        let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) as f64;
        let lse = max
            + row
                .iter()
                .map(|v| (*v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        ce.push(lse - row[y] as f64);
        // arg-max, first index on ties
        let pred = row
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, v)| {
                if *v > bv {
                    (i, *v)
                } else {
                    (bi, bv)
                }
            })
            .0;
        correct.push(pred == y);
    }
    (ce, correct)
}

/// Evaluates the model on `data` in chunks (no autodiff graph: pass a model on a plain device).
pub fn evaluate<M: LayeredModel>(
    model: &M,
    data: &Dataset,
    device: &Device,
    mode: Stochastic,
    clip: f64,
) -> Losses {
    let n = data.len();
    let mut sum_ce = 0.0;
    let mut sum_clip = 0.0;
    let mut errors = 0usize;
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(EVAL_CHUNK) {
        let x = data.features_of(chunk, device);
        let logits = to_f32_vec(model.forward(x, mode));
        let k = logits.len() / chunk.len();
        let labels: Vec<usize> = chunk.iter().map(|&i| data.y[i]).collect();
        let (ce, correct) = per_example(&logits, &labels, k);
        for (c, ok) in ce.iter().zip(&correct) {
            sum_ce += c;
            // NaN must stay NaN (f64::min would return the clip)
            sum_clip += if c.is_nan() { f64::NAN } else { c.min(clip) };
            errors += usize::from(!ok);
        }
    }
    let nf = n.max(1) as f64;
    Losses {
        cross_entropy: sum_ce / nf,
        cross_entropy_clipped: sum_clip / nf,
        zero_one: errors as f64 / nf,
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_matches_hand_computation() {
        // logits (1, 2, 3), label 0: CE = log(e + e² + e³) − 1
        let (ce, ok) = per_example(&[1.0, 2.0, 3.0, 5.0, 0.0, 0.0], &[0, 0], 3);
        let e = std::f64::consts::E;
        assert!((ce[0] - ((e + e * e + e * e * e).ln() - 1.0)).abs() < 1e-6);
        assert!((ce[1] - (1.0 + 2.0 * (-5.0f64).exp()).ln()).abs() < 1e-6);
        assert_eq!(ok, vec![false, true]);
        // huge logits do not overflow
        let (ce, _) = per_example(&[1000.0, -1000.0], &[1], 2);
        assert!((ce[0] - 2000.0).abs() < 1e-6);
        // non-finite logits give no loss and no correct prediction
        let (ce, ok) = per_example(&[f32::NAN, 0.0, f32::INFINITY, 0.0], &[0, 0], 2);
        assert!(ce.iter().all(|c| c.is_nan()));
        assert_eq!(ok, vec![false, false]);
    }
}
