//! Gaussian-smoothed divergences and entropies (Goldfeld et al. 2019, 2020).
//!
//! For a layer that adds noise N(0, β²I) to its pre-noise output S, the representation
//! T = S + βZ has the density of a Gaussian mixture centred at the points of S. The smoothed
//! empirical measure P̂∗N_β is that mixture over the captured pre-noise points, and
//!
//! * the **smoothed KL** D(P̂∗N_β ‖ Q̂∗N_β) = E_{x∼P̂∗N_β}[ln p̂_β(x) − ln q̂_β(x)] is estimated by
//!   Monte Carlo: `draws` noisy copies x = p_i + βz of every point of P, each mixture density
//!   evaluated exactly with a log-sum-exp over all centres (tiles on the backend);
//! * the **mixture entropy** h(P̂∗N_β) = −E ln p̂_β(x) likewise.
//!
//! Everything is computed in the span of the pooled centres: the noise components orthogonal
//! to it shift every ‖x − c_j‖² by the same amount, which cancels in a density ratio and adds
//! the same (d − r)/2·ln(2πeβ²) to every entropy, so it cancels in I(X; T) as well.

use burn::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::kl::KlValue;
use crate::span::Coords;
use crate::tiles::{common_scale, Base};
use crate::EstimateError;

/// Noisy samples generated per batch (bounds host memory: batch · d f64).
const SAMPLE_BATCH: usize = 8192;

fn check_beta(beta: f64) -> Result<(), EstimateError> {
    if beta.is_finite() && beta > 0.0 {
        Ok(())
    } else {
        Err(EstimateError::Degenerate(format!(
            "the smoothing noise β must be finite and > 0, got {beta}"
        )))
    }
}

/// Calls `f` on batches of `draws` noisy copies x = c_i + βz of every row of `centers`, in
/// order of the rows.
fn for_noisy_batches(
    centers: &Coords,
    beta: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
    mut f: impl FnMut(&Coords),
) {
    let d = centers.d;
    let per_batch = (SAMPLE_BATCH / draws.max(1)).max(1);
    let mut start = 0;
    while start < centers.n {
        let len = per_batch.min(centers.n - start);
        let mut data = Vec::with_capacity(len * draws * d);
        for i in start..start + len {
            let c = centers.row(i);
            for _ in 0..draws {
                data.extend(c.iter().map(|v| {
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    v + beta * z
                }));
            }
        }
        f(&Coords::new(data, len * draws, d));
        start += len;
    }
}

/// Monte Carlo estimate of D(P̂∗N_β ‖ Q̂∗N_β) between the Gaussian-smoothed empirical
/// measures of `p` and `q`, from `draws` noisy copies of each point of `p`.
pub fn smoothed_kl(
    p: &Coords,
    q: &Coords,
    beta: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<KlValue, EstimateError> {
    check_beta(beta)?;
    if p.n == 0 || q.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "smoothed KL",
            have: 0,
            need: 1,
        });
    }
    if p.d == 0 {
        return Ok(KlValue {
            value: 0.0,
            dims: 0,
            ties: 0,
        });
    }
    // noisy samples reach ~6β beyond the centres; the scale only guards f32 range
    let scale = common_scale(p, q) + 6.0 * beta;
    let bp = Base::new(p, scale, device);
    let bq = Base::new(q, scale, device);
    let mut sum = 0.0;
    let mut count = 0usize;
    for_noisy_batches(p, beta, draws, rng, |x| {
        let lp = bp.mixture_log_kernel(x, beta, device);
        let lq = bq.mixture_log_kernel(x, beta, device);
        sum += lp.iter().zip(&lq).map(|(a, b)| a - b).sum::<f64>();
        count += x.n;
    });
    let value = sum / count as f64 + (q.n as f64 / p.n as f64).ln();
    if !value.is_finite() {
        return Err(EstimateError::Degenerate(
            "smoothed KL is not finite (β far below the distances between the clouds?)".into(),
        ));
    }
    Ok(KlValue {
        value,
        dims: p.d,
        ties: 0,
    })
}

/// h(P̂∗N_β) in nats, P̂ uniform on the rows of `centers` (in `centers.d` dimensions), by Monte
/// Carlo with `draws` noisy copies of every centre.
pub fn mixture_entropy(
    centers: &Coords,
    beta: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<f64, EstimateError> {
    check_beta(beta)?;
    if centers.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "mixture entropy",
            have: 0,
            need: 1,
        });
    }
    let r = centers.d as f64;
    let gauss = 0.5 * r * (2.0 * std::f64::consts::PI * beta * beta).ln();
    if centers.d == 0 {
        return Ok(0.0);
    }
    let base = Base::new(centers, common_scale(centers, centers) + 6.0 * beta, device);
    let mut sum = 0.0;
    let mut count = 0usize;
    for_noisy_batches(centers, beta, draws, rng, |x| {
        sum += base.mixture_log_kernel(x, beta, device).iter().sum::<f64>();
        count += x.n;
    });
    finite_entropy((centers.n as f64).ln() - sum / count as f64 + gauss)
}

/// A mixture entropy, or an error when it is not finite: far-apart centres (or coordinates
/// whose squared distances overflow) make every kernel underflow, and the log-sum-exp NaN.
fn finite_entropy(h: f64) -> Result<f64, EstimateError> {
    if h.is_finite() {
        Ok(h)
    } else {
        Err(EstimateError::Degenerate(
            "mixture entropy is not finite (β far below the distances between the centres, or coordinates too large?)".into(),
        ))
    }
}

/// Mean over groups of h(mixture of the group's centres ∗ N_β): the conditional entropy
/// h(T | X) when group i holds the pre-noise outputs of input x_i under independent upstream
/// noise. Groups are small (the draws per input), so each is evaluated on the host in f64. A
/// group of one centre has the closed form (r/2)·ln(2πeβ²).
pub fn grouped_mixture_entropy(
    centers: &Coords,
    group: usize,
    beta: f64,
    draws: usize,
    rng: &mut ChaCha8Rng,
) -> Result<f64, EstimateError> {
    check_beta(beta)?;
    let r = centers.d as f64;
    let gauss = 0.5 * r * (2.0 * std::f64::consts::PI * beta * beta).ln();
    if group <= 1 || centers.d == 0 {
        return Ok(gauss + 0.5 * r);
    }
    if centers.n == 0 || !centers.n.is_multiple_of(group) {
        return Err(EstimateError::Degenerate(format!(
            "{} centres do not form groups of {group}",
            centers.n
        )));
    }
    let inv = -1.0 / (2.0 * beta * beta);
    let groups = centers.n / group;
    let mut total = 0.0;
    let mut x = vec![0.0; centers.d];
    let mut terms = vec![0.0; group];
    for gi in 0..groups {
        let rows: Vec<&[f64]> = (0..group).map(|k| centers.row(gi * group + k)).collect();
        let mut sum = 0.0;
        for c in &rows {
            for _ in 0..draws {
                for (xv, cv) in x.iter_mut().zip(c.iter()) {
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    *xv = cv + beta * z;
                }
                for (t, c2) in terms.iter_mut().zip(&rows) {
                    *t = inv * crate::span::sq_dist(&x, c2);
                }
                let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                sum += m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
            }
        }
        let mean_lse = sum / (group * draws) as f64;
        total += (group as f64).ln() - mean_lse + gauss;
    }
    finite_entropy(total / groups as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn one_centre_has_the_gaussian_entropy() {
        // a single centre: the mixture is N(c, β²I), h = (r/2)·ln(2πeβ²)
        let c = Coords::new(vec![0.3, -1.0, 2.0], 1, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let h = mixture_entropy(&c, 0.5, 2000, &mut rng, &device()).unwrap();
        let truth = 1.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * 0.25).ln();
        // MC error: sd(χ²₃/2)/√2000 ≈ 0.03
        assert!((h - truth).abs() < 0.12, "{h} vs {truth}");
        let g = grouped_mixture_entropy(&c, 1, 0.5, 10, &mut rng).unwrap();
        assert!((g - truth).abs() < 1e-12);
    }

    #[test]
    fn two_far_centres_add_ln_two() {
        // well separated centres: h = Gaussian entropy + ln 2 (up to the tiny overlap)
        let c = Coords::new(vec![0.0, 0.0, 40.0, 0.0], 2, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let h = mixture_entropy(&c, 1.0, 500, &mut rng, &device()).unwrap();
        let truth = (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() + 2f64.ln();
        // MC error ≈ sd(χ²₂/2)/√1000 ≈ 0.03; a missing ln 2 would be 0.69 off
        assert!((h - truth).abs() < 0.12, "{h} vs {truth}");
        let g = grouped_mixture_entropy(&c, 2, 1.0, 500, &mut rng).unwrap();
        assert!((g - truth).abs() < 0.12, "{g} vs {truth}");
    }

    #[test]
    fn smoothed_kl_of_two_point_masses_is_the_gaussian_shift_kl() {
        // one centre each: D(N(a, β²) ‖ N(b, β²)) = ‖a − b‖²/(2β²) exactly, sample by sample
        let p = Coords::new(vec![0.0, 0.0], 1, 2);
        let q = Coords::new(vec![1.0, 2.0], 1, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let v = smoothed_kl(&p, &q, 0.5, 4000, &mut rng, &device()).unwrap();
        let truth = 5.0 / (2.0 * 0.25);
        // per sample ln p − ln q = (‖x−b‖² − ‖x−a‖²)/(2β²), linear in the noise: MC error
        // ‖a−b‖/β/√draws ≈ 0.07
        assert!((v.value - truth).abs() < 0.25, "{} vs {truth}", v.value);
        assert!(smoothed_kl(&p, &q, 0.0, 1, &mut rng, &device()).is_err());
    }
}
