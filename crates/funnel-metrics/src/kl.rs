//! KL divergence estimators between two unlabelled clouds given in span coordinates
//! (see [`crate::span`]); the class-conditional combination lives in [`crate::divergence`].

use burn::prelude::*;
use nalgebra::{Cholesky, DVector};
use statrs::function::gamma::digamma;

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

/// Expected bias of ln det Σ̂ for a sample covariance (divisor n − 1) of n Gaussian points in r
/// dimensions: (n−1)Σ̂ is Wishart_r(Σ, n−1), so E ln det Σ̂ − ln det Σ =
/// Σ_{i=1..r} ψ((n−i)/2) + r·ln(2/(n−1)).
fn logdet_bias(n: usize, r: usize) -> f64 {
    let nf = n as f64;
    (1..=r).map(|i| digamma((nf - i as f64) / 2.0)).sum::<f64>()
        + r as f64 * (2.0 / (nf - 1.0)).ln()
}

/// Smallest number of points per side for [`gaussian`] in `r` dimensions (the inverse
/// covariance needs n − r − 2 ≥ 1).
pub fn gaussian_min_points(r: usize) -> usize {
    r + 3
}

/// KL between Gaussians fitted to `p` and `q` in their first `dims` coordinates,
/// ½[tr(Σq⁻¹Σp) + (μq−μp)ᵀΣq⁻¹(μq−μp) − r + ln det Σq − ln det Σp], with every term
/// corrected for its finite-sample bias under Gaussian data (Wishart moments; P and Q samples
/// independent): E Σ̂q⁻¹ = Σq⁻¹·(n_q−1)/(n_q−r−2), E Δ̂ᵀAΔ̂ = ΔᵀAΔ + tr(A(Σp/n_p + Σq/n_q)),
/// and [`logdet_bias`]. The plug-in estimate without these corrections grows without limit as r
/// approaches n (its trace term has expectation r(n−1)/(n−r−2)).
///
/// The coordinates are principal directions of the pooled cloud (decreasing variance), so the
/// first `dims` are the leading ones; the caller picks `dims` well below the number of points.
/// Dropping directions is a projection, which can only lower the KL (data processing).
///
/// A side whose covariance is singular where the other's is not (e.g. a unit dead on every
/// training point of a class but alive on test points) has no density relative to the other:
/// the KL is infinite, reported as a `Degenerate` error rather than a number set by a ridge.
pub fn gaussian(p: &Coords, q: &Coords, dims: usize) -> Result<KlValue, EstimateError> {
    if p.d == 0 {
        // every point of both clouds is the same point
        return Ok(KlValue {
            value: 0.0,
            dims: 0,
            ties: 0,
        });
    }
    let r = dims.min(p.d).max(1);
    let need = gaussian_min_points(r);
    if p.n < need || q.n < need {
        return Err(EstimateError::TooFewPoints {
            estimator: "gaussian KL",
            have: p.n.min(q.n),
            need,
        });
    }
    let (p, q) = (p.truncate_columns(r), q.truncate_columns(r));
    let (mp, mq) = (DVector::from_vec(p.mean()), DVector::from_vec(q.mean()));
    let (mut sp, mut sq) = (p.covariance(), q.covariance());
    for (side, s) in [("train", &sp), ("test", &sq)] {
        let eig = s.clone().symmetric_eigenvalues();
        let (lo, hi) = eig
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
        // NaN-safe: a NaN eigenvalue counts as degenerate too
        if lo.is_nan() || lo <= 1e-10 * hi {
            return Err(EstimateError::Degenerate(format!(
                "the {side} cloud is flat along a direction where the pooled cloud is not (covariance eigenvalues {lo:.2e} … {hi:.2e}): its Gaussian fit is singular and the KL is infinite"
            )));
        }
    }
    // a tiny ridge guards the Cholesky factorisation against round-off, nothing more
    let ridge = 1e-14 * (sp.trace() + sq.trace()) / r as f64;
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
    let (np, nq, rf) = (p.n as f64, q.n as f64, r as f64);
    let inverse_bias = (nq - 1.0) / (nq - rf - 2.0);
    // unbiased tr(Σq⁻¹Σp)
    let trace = cq.solve(&sp).trace() / inverse_bias;
    let delta = &mq - &mp;
    // unbiased ΔᵀΣq⁻¹Δ
    let maha = delta.dot(&cq.solve(&delta)) / inverse_bias - trace / np - rf / nq;
    let logdet_q = logdet(&cq) - logdet_bias(q.n, r);
    let logdet_p = logdet(&cp) - logdet_bias(p.n, r);
    let value = 0.5 * (trace + maha - rf + logdet_q - logdet_p);
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
/// Duplicates: a zero distance (exact duplicates in the data, e.g. dead-ReLU points) is floored
/// at 10⁻⁶ × the median positive neighbour distance, so a duplicate shared by P and Q contributes
/// ≈ 0 and one present only in P a large positive term (≈ r·ln 10⁶/n); the number of such points
/// is returned as `ties`. The estimator assumes densities, so when more than
/// [`MAX_TIE_FRACTION`] of the points sit on duplicates (atoms) it returns an error instead of a
/// number whose size the floor would decide.
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
    wkv(&rho, &nu, p.d, m as f64)
}

/// D̂(P_y ‖ P) for a sub-cloud P_y (rows `idx` of `all`) against the whole cloud it is part of,
/// as needed for I(T; Y) = Σ_y π_y·D(P_{T|y} ‖ P_T): both neighbour searches exclude the point
/// itself, so the reference cloud has N − 1 points: D̂ = (r/n_y)·Σ ln(ν_k/ρ_k) + ln((N−1)/(n_y−1)).
pub fn knn_within(
    all: &Coords,
    idx: &[usize],
    k: usize,
    device: &Device,
) -> Result<KlValue, EstimateError> {
    let n = idx.len();
    if all.d == 0 {
        return Ok(KlValue {
            value: 0.0,
            dims: 0,
            ties: 0,
        });
    }
    if n < k + 1 {
        return Err(EstimateError::TooFewPoints {
            estimator: "knn KL",
            have: n,
            need: k + 1,
        });
    }
    let p = all.select(idx);
    let local: Vec<usize> = (0..n).collect();
    let ids: Vec<usize> = (0..all.n).collect();
    let rho = kth_distances(&p, &p, k, Some((&local, &local)), device);
    let nu = kth_distances(&p, all, k, Some((idx, &ids)), device);
    let rho: Vec<f64> = rho.into_iter().map(|v| v.expect("n ≥ k + 1")).collect();
    let nu: Vec<f64> = nu.into_iter().map(|v| v.expect("N ≥ n ≥ k + 1")).collect();
    wkv(&rho, &nu, all.d, (all.n - 1) as f64)
}

/// The WKV sum from neighbour distances ρ (within P, self excluded) and ν (in the reference
/// cloud of `m` points), with the duplicate floor and the tie check of [`knn`].
fn wkv(rho: &[f64], nu: &[f64], d: usize, m: f64) -> Result<KlValue, EstimateError> {
    let n = rho.len();
    let mut positive: Vec<f64> = rho.iter().chain(nu).copied().filter(|v| *v > 0.0).collect();
    if positive.is_empty() {
        // every point coincides with its neighbours in both clouds
        return Ok(KlValue {
            value: 0.0,
            dims: d,
            ties: n,
        });
    }
    let mid = positive.len() / 2;
    positive.select_nth_unstable_by(mid, f64::total_cmp);
    let floor = 1e-6 * positive[mid];
    let mut ties = 0;
    let mut sum = 0.0;
    for (r, v) in rho.iter().zip(nu) {
        if *r < floor || *v < floor {
            ties += 1;
        }
        sum += (v.max(floor) / r.max(floor)).ln();
    }
    if ties as f64 > MAX_TIE_FRACTION * n as f64 {
        return Err(EstimateError::Degenerate(format!(
            "{ties} of {n} points sit on duplicate points (atoms, e.g. dead units); the knn estimator assumes densities — use kl = \"gaussian\" for this layer"
        )));
    }
    let value = d as f64 * sum / n as f64 + (m / (n as f64 - 1.0)).ln();
    Ok(KlValue {
        value,
        dims: d,
        ties,
    })
}

/// Largest fraction of points on duplicates that [`knn`] accepts.
pub const MAX_TIE_FRACTION: f64 = 0.1;

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
