//! KL divergence estimators between two unlabelled clouds given in span coordinates
//! (see [`crate::span`]); the class-conditional combination lives in [`crate::divergence`].

use burn::prelude::*;
use nalgebra::{Cholesky, DVector};

use crate::knn::kth_distances;
use crate::span::Coords;
use crate::EstimateError;

/// A KL estimate between two clouds and what it is worth.
#[derive(Clone, Debug, PartialEq)]
pub struct KlValue {
    pub value: f64,
    /// Dimensions the estimator worked in.
    pub dims: usize,
    /// Points whose neighbour distance was zero (duplicates), for kNN.
    pub ties: usize,
}

/// Closed-form KL between Gaussians fitted to `p` and `q`:
/// ½[tr(Σq⁻¹Σp) + (μq−μp)ᵀΣq⁻¹(μq−μp) − r + ln det Σq − ln det Σp].
///
/// The coordinates are principal directions of the pooled cloud (decreasing variance). A
/// covariance fitted to n points has rank ≤ n − 1, so the estimator keeps the leading
/// r = min(d, n_p − 2, n_q − 2) directions; dropping directions is a projection, which can only
/// lower the KL (data processing), so the result is then an estimate of a lower bound.
pub fn gaussian(p: &Coords, q: &Coords) -> Result<KlValue, EstimateError> {
    if p.d == 0 {
        return Ok(KlValue {
            value: 0.0,
            dims: 0,
            ties: 0,
        });
    }
    let r = p.d.min(p.n.saturating_sub(2)).min(q.n.saturating_sub(2));
    if r == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "gaussian KL",
            have: p.n.min(q.n),
            need: 3,
        });
    }
    let (p, q) = (p.truncate_columns(r), q.truncate_columns(r));
    let (mp, mq) = (DVector::from_vec(p.mean()), DVector::from_vec(q.mean()));
    let (mut sp, mut sq) = (p.covariance(), q.covariance());
    // a tiny ridge guards the Cholesky factorisation against round-off, nothing more
    let ridge = 1e-12 * (sp.trace() + sq.trace()) / r as f64 + f64::MIN_POSITIVE;
    for i in 0..r {
        sp[(i, i)] += ridge;
        sq[(i, i)] += ridge;
    }
    let degenerate =
        || EstimateError::Degenerate("a class covariance is not positive definite".into());
    let cq = Cholesky::new(sq).ok_or_else(degenerate)?;
    let cp = Cholesky::new(sp.clone()).ok_or_else(degenerate)?;
    let logdet = |c: &Cholesky<f64, nalgebra::Dyn>| {
        2.0 * c.l().diagonal().iter().map(|v| v.ln()).sum::<f64>()
    };
    let trace_term = cq.solve(&sp).trace();
    let delta = &mq - &mp;
    let maha = delta.dot(&cq.solve(&delta));
    let value = 0.5 * (trace_term + maha - r as f64 + logdet(&cq) - logdet(&cp));
    if !value.is_finite() {
        return Err(EstimateError::Degenerate(
            "gaussian KL is not finite".into(),
        ));
    }
    Ok(KlValue {
        value,
        dims: r,
        ties: 0,
    })
}

/// Wang–Kulkarni–Verdú (2009) k-nearest-neighbour estimator:
/// D̂(P‖Q) = (r/n)·Σ_i ln(ν_k(i)/ρ_k(i)) + ln(m/(n−1)),
/// ρ_k(i) the distance from p_i to its k-th neighbour in P (itself excluded), ν_k(i) to its
/// k-th neighbour in Q, r the dimension of the span.
///
/// Duplicates: a zero distance (exact duplicates in the data, e.g. dead-ReLU points) is floored at 10⁻⁶ × the median positive neighbour distance, so a duplicate shared by P and
/// Q contributes ≈ 0 and one present only in P contributes a large positive term; the number
/// of such points is returned as `ties`.
pub fn knn(p: &Coords, q: &Coords, k: usize, device: &Device) -> Result<KlValue, EstimateError> {
    if p.d == 0 {
        return Ok(KlValue {
            value: 0.0,
            dims: 0,
            ties: 0,
        });
    }
    let n = p.n;
    let m = q.n;
    if n < k + 1 || m < k {
        return Err(EstimateError::TooFewPoints {
            estimator: "knn KL",
            have: n.min(m),
            need: k + 1,
        });
    }
    // a point is not its own neighbour
    let ids: Vec<usize> = (0..n).collect();
    let rho = kth_distances(p, p, k, Some((&ids, &ids)), device);
    let nu = kth_distances(p, q, k, None, device);
    let rho: Vec<f64> = rho
        .into_iter()
        .map(|v| {
            v.ok_or(EstimateError::TooFewPoints {
                estimator: "knn KL",
                have: n,
                need: k + 1,
            })
        })
        .collect::<Result<_, _>>()?;
    let nu: Vec<f64> = nu.into_iter().map(|v| v.expect("m ≥ k")).collect();
    let mut positive: Vec<f64> = rho
        .iter()
        .chain(&nu)
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    if positive.is_empty() {
        // every point coincides with its neighbours in both clouds
        return Ok(KlValue {
            value: 0.0,
            dims: p.d,
            ties: n,
        });
    }
    let mid = positive.len() / 2;
    positive.select_nth_unstable_by(mid, f64::total_cmp);
    let floor = 1e-6 * positive[mid];
    let mut ties = 0;
    let mut sum = 0.0;
    for (r, v) in rho.iter().zip(&nu) {
        if *r < floor || *v < floor {
            ties += 1;
        }
        sum += (v.max(floor) / r.max(floor)).ln();
    }
    let value = p.d as f64 * sum / n as f64 + (m as f64 / (n as f64 - 1.0)).ln();
    Ok(KlValue {
        value,
        dims: p.d,
        ties,
    })
}

/// KL between two categorical distributions; `None` when `p` puts mass where `q` has none.
pub fn categorical(p: &[f64], q: &[f64]) -> Option<f64> {
    let mut s = 0.0;
    for (a, b) in p.iter().zip(q) {
        if *a > 0.0 {
            if *b <= 0.0 {
                return None;
            }
            s += a * (a / b).ln();
        }
    }
    Some(s.max(0.0))
}
