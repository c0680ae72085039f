//! Categorical distributions from log-weights: stable normalisation (log-sum-exp) and exact
//! draws.

use rand::{Rng, RngExt};

/// Probabilities proportional to exp(log_weights), computed stably: the largest log-weight is
/// subtracted before exponentiating (log-sum-exp), so the result sums to 1 up to rounding even
/// for log-weights like [1000, 999, −1e6]. Entries of −∞ get probability 0. If no entry is finite
/// and > −∞, or any is NaN or +∞, every entry of the result is NaN; an empty input gives an empty
/// result.
pub fn normalise(log_weights: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; log_weights.len()];
    normalise_into(log_weights, &mut out);
    out
}

/// [`normalise`] into `out` (same length); returns ln Σ exp(log_weights) (NaN when invalid).
pub(crate) fn normalise_into(log_weights: &[f64], out: &mut [f64]) -> f64 {
    debug_assert_eq!(log_weights.len(), out.len());
    let max = log_weights
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| if l > m { l } else { m });
    if !max.is_finite() || log_weights.iter().any(|l| l.is_nan()) {
        out.fill(f64::NAN);
        return f64::NAN;
    }
    let mut z = 0.0;
    for (p, &l) in out.iter_mut().zip(log_weights) {
        *p = (l - max).exp();
        z += *p;
    }
    let inv = 1.0 / z;
    for p in out.iter_mut() {
        *p *= inv;
    }
    max + z.ln()
}

/// `draws` exact draws from the categorical distribution `probabilities` (non-negative, finite,
/// not all 0; they are normalised here), by inverse CDF: a uniform u ∈ [0, total) is located by
/// binary search in the cumulative sums. Entries of probability 0 are never drawn.
///
/// # Panics
/// If a probability is negative or not finite, or all are 0.
pub fn sample<R: Rng + ?Sized>(probabilities: &[f64], draws: usize, rng: &mut R) -> Vec<usize> {
    assert!(
        probabilities.iter().all(|p| p.is_finite() && *p >= 0.0),
        "sample: probabilities must be finite and ≥ 0"
    );
    let mut cumulative = Vec::with_capacity(probabilities.len());
    let mut total = 0.0;
    for &p in probabilities {
        total += p;
        cumulative.push(total);
    }
    assert!(total > 0.0, "sample: probabilities must not all be 0");
    let last_positive = probabilities
        .iter()
        .rposition(|&p| p > 0.0)
        .expect("a positive probability exists");
    (0..draws)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            cumulative.partition_point(|&c| c <= u).min(last_positive)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn normalise_sums_to_one_on_extreme_log_weights() {
        for lw in [
            vec![1000.0, 999.0, -1e6],
            vec![-1e6, -1e6 - 1.0, -1e6 - 50.0],
            vec![700.0, 710.0, f64::NEG_INFINITY, 0.0],
        ] {
            let p = normalise(&lw);
            let sum: f64 = p.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "{lw:?} → {p:?}");
            assert!(p.iter().all(|x| x.is_finite() && *x >= 0.0));
        }
        // [1000, 999, −1e6]: the first two are in ratio e : 1, the third is 0.
        let p = normalise(&[1000.0, 999.0, -1e6]);
        let e = 1f64.exp();
        assert!((p[0] - e / (1.0 + e)).abs() < 1e-15);
        assert!((p[1] - 1.0 / (1.0 + e)).abs() < 1e-15);
        assert_eq!(p[2], 0.0);
        assert!(normalise(&[f64::NEG_INFINITY; 2])
            .iter()
            .all(|x| x.is_nan()));
        assert!(normalise(&[0.0, f64::NAN]).iter().all(|x| x.is_nan()));
        assert!(normalise(&[]).is_empty());
    }

    #[test]
    fn normalise_matches_direct_softmax() {
        let lw = [0.3, -1.2, 2.5, 0.0, -0.7, 1.1];
        let direct: Vec<f64> = lw.iter().map(|l: &f64| l.exp()).collect();
        let z: f64 = direct.iter().sum();
        for (p, d) in normalise(&lw).iter().zip(&direct) {
            assert!((p - d / z).abs() < 1e-14, "{p} vs {}", d / z);
        }
    }

    #[test]
    fn sample_matches_the_probabilities() {
        // Unnormalised on purpose; zeros inside and at the end.
        let weights = [0.2, 0.0, 0.4, 0.6, 0.8, 0.0];
        let total: f64 = weights.iter().sum();
        let draws = 200_000;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 6];
        for i in sample(&weights, draws, &mut rng) {
            counts[i] += 1;
        }
        for (w, &c) in weights.iter().zip(&counts) {
            let p = w / total;
            let sigma = (p * (1.0 - p) / draws as f64).sqrt();
            let freq = c as f64 / draws as f64;
            if p == 0.0 {
                assert_eq!(c, 0);
            } else {
                assert!((freq - p).abs() <= 4.0 * sigma, "{freq} vs {p}");
            }
        }
        assert_eq!(sample(&[0.0, 1.0], 100, &mut rng), vec![1; 100]);
    }
}
