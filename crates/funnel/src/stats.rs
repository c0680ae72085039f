//! Statistics over runs: mean and sd, Student-t intervals across seeds, Kendall's τ_b,
//! quantiles and a seeded resampling stream (the bootstrap of `sweep::rankings`).

/// Kendall's τ-b between two equally long samples (pairs with a non-finite side are
/// dropped); NaN with fewer than two pairs or when one side is constant. Ties as in scipy's
/// `kendalltau`: τ_b = (C − D) / sqrt(n_x · n_y), with n_x (n_y) the pairs not tied in x (y).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .collect();
    tau_b_of_pairs(&pairs)
}

/// [`kendall_tau_b`] of finite pairs.
pub fn tau_b_of_pairs(pairs: &[(f64, f64)]) -> f64 {
    tau_b_skipping(pairs, |_, _| false)
}

/// τ-b of finite pairs, leaving out the pairs (i, j), i < j, for which `skip(i, j)` holds.
pub fn tau_b_skipping(pairs: &[(f64, f64)], skip: impl Fn(usize, usize) -> bool) -> f64 {
    let sign = |a: f64, b: f64| i64::from(a > b) - i64::from(a < b);
    let (mut s, mut nx, mut ny) = (0i64, 0i64, 0i64);
    for (i, &(xi, yi)) in pairs.iter().enumerate() {
        for (j, &(xj, yj)) in pairs.iter().enumerate().skip(i + 1) {
            if skip(i, j) {
                continue;
            }
            let (dx, dy) = (sign(xi, xj), sign(yi, yj));
            s += dx * dy;
            nx += dx * dx;
            ny += dy * dy;
        }
    }
    if nx > 0 && ny > 0 {
        s as f64 / (nx as f64 * ny as f64).sqrt()
    } else {
        f64::NAN
    }
}

/// The q-quantile (0 ≤ q ≤ 1) of `sorted` (ascending), linearly interpolated between order
/// statistics (numpy's default, Hyndman and Fan's type 7); NaN for an empty slice.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (i, frac) = (h.floor() as usize, h - h.floor());
    match sorted.get(i + 1) {
        Some(&next) if frac > 0.0 => sorted[i] + frac * (next - sorted[i]),
        _ => sorted[i],
    }
}

/// A deterministic stream of uniform draws for resampling: SplitMix64 (the state advances by
/// the golden-ratio increment, each output is the finaliser of the state).
pub struct Resampler(u64);

impl Resampler {
    pub fn new(seed: u64) -> Resampler {
        Resampler(seed)
    }

    /// A uniform index in 0..n (n > 0), by the high half of a 128-bit product (Lemire).
    pub fn index(&mut self, n: usize) -> usize {
        let z = funnel_core::seed::splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}

/// The Student-t interval of the mean over the finite values (NaN with fewer than 2).
pub fn seed_interval(v: &[f64], confidence: f64) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let xs: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (mean, sd) = mean_std(&xs);
    let t = StudentsT::new(0.0, 1.0, (xs.len() - 1) as f64)
        .map(|d| d.inverse_cdf((1.0 + confidence) / 2.0))
        .unwrap_or(f64::NAN);
    let half = t * sd / (xs.len() as f64).sqrt();
    (mean - half, mean + half)
}

/// Mean and sample standard deviation of the finite values (sd NaN for fewer than two): the
/// sum over n and the two-pass sample variance. Not statrs's online moments (used for the
/// permutation nulls in funnel-metrics): those differ in the last bits, can return a variance
/// just below 0 (sd NaN) for seeds that agree to rounding, and would change the committed
/// studies' aggregates and figures.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    (m, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_b_hand_example() {
        // x = 1 2 3 4, y = 1 3 2 4: pairs (6): one discordant (2,3), five concordant:
        // τ = (5 − 1)/6
        let t = kendall_tau_b(&[1., 2., 3., 4.], &[1., 3., 2., 4.]);
        assert!((t - 4.0 / 6.0).abs() < 1e-12, "{t}");
        // ties: x = 1 1 2 3, y = 1 2 2 3. Pairs: (1,2) tie in x only; (1,3) C; (1,4) C;
        // (2,3) tie in y only; (2,4) C; (3,4) C → C = 4, D = 0, tx = 1, ty = 1:
        // τ_b = 4 / sqrt((4 + 1)(4 + 1)) = 0.8 (scipy.stats.kendalltau agrees)
        let t = kendall_tau_b(&[1., 1., 2., 3.], &[1., 2., 2., 3.]);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
        // reversed order: −1; constant side: NaN; NaN pairs dropped
        assert!((kendall_tau_b(&[1., 2., 3.], &[3., 2., 1.]) + 1.0).abs() < 1e-12);
        assert!(kendall_tau_b(&[1., 1., 1.], &[1., 2., 3.]).is_nan());
        let t = kendall_tau_b(&[1., f64::NAN, 2., 3.], &[1., 5., 3., 2.]);
        assert!((t - 1.0 / 3.0).abs() < 1e-12, "{t}");
    }
}
