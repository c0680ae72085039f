//! Statistics over runs: mean and sd, Student-t intervals across seeds, Kendall's τ_b.

/// Kendall's τ-b between two equally long samples (pairs with a NaN are dropped); NaN with
/// fewer than two pairs or when one side is constant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|(&a, &b)| (a, b))
        .collect();
    let (mut c, mut d, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..pairs.len() {
        for j in i + 1..pairs.len() {
            let dx =
                (pairs[i].0 - pairs[j].0).signum() * ((pairs[i].0 != pairs[j].0) as i32 as f64);
            let dy =
                (pairs[i].1 - pairs[j].1).signum() * ((pairs[i].1 != pairs[j].1) as i32 as f64);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => tx += 1.0,
                (false, true) => ty += 1.0,
                (false, false) => {
                    if dx * dy > 0.0 {
                        c += 1.0
                    } else {
                        d += 1.0
                    }
                }
            }
        }
    }
    let denom = ((c + d + tx) * (c + d + ty)).sqrt();
    if denom > 0.0 {
        (c - d) / denom
    } else {
        f64::NAN
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
