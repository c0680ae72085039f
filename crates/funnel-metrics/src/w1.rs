//! 1-Wasserstein estimators between two unlabelled clouds (uniform weights on the points).

use burn::prelude::*;
use funnel_model::to_f32_vec;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::assignment;
use crate::span::{sq_dist, Coords};
use crate::EstimateError;

/// A W1 estimate and the number of points per side it used.
#[derive(Clone, Debug, PartialEq)]
pub struct W1Value {
    pub value: f64,
    pub points_p: usize,
    pub points_q: usize,
}

/// Exact W1 between two 1-D empirical measures of any sizes: the L1 distance between their
/// quantile functions, ∫₀¹ |F⁻¹(t) − G⁻¹(t)| dt. Sorts its inputs in place.
pub fn one_dimensional(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return f64::NAN;
    }
    if n == m {
        return a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .sum::<f64>()
            / n as f64;
    }
    // walk the merged breakpoints i/n and j/m in integer arithmetic (units of 1/(n·m))
    let (mut i, mut j) = (0usize, 0usize);
    let mut t = 0u128;
    let mut total = 0.0;
    while i < n && j < m {
        let ti = (i as u128 + 1) * m as u128;
        let tj = (j as u128 + 1) * n as u128;
        let next = ti.min(tj);
        total += (next - t) as f64 * (a[i] - b[j]).abs();
        t = next;
        if ti == next {
            i += 1;
        }
        if tj == next {
            j += 1;
        }
    }
    total / (n as f64 * m as f64)
}

/// `count` indices of `0..n` without replacement (all of them, in order, when count ≥ n).
fn subsample(n: usize, count: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if count >= n {
        (0..n).collect()
    } else {
        let mut idx = sample(rng, n, count).into_vec();
        idx.sort_unstable();
        idx
    }
}

/// Exact empirical W1 by optimal assignment. The clouds are subsampled (without replacement)
/// to a common size min(n_p, n_q, cap), since an assignment needs equal sizes; `cap` bounds the
/// O(n³) solve. 1-D clouds use the exact sorted formula on all points instead.
pub fn exact(
    p: &Coords,
    q: &Coords,
    cap: usize,
    rng: &mut ChaCha8Rng,
) -> Result<W1Value, EstimateError> {
    if p.n == 0 || q.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "exact W1",
            have: 0,
            need: 1,
        });
    }
    if p.d == 0 {
        return Ok(W1Value {
            value: 0.0,
            points_p: p.n,
            points_q: q.n,
        });
    }
    if p.d == 1 {
        let (mut a, mut b) = (p.data.clone(), q.data.clone());
        return Ok(W1Value {
            value: one_dimensional(&mut a, &mut b),
            points_p: p.n,
            points_q: q.n,
        });
    }
    let size = p.n.min(q.n).min(cap.max(1));
    let ip = subsample(p.n, size, rng);
    let iq = subsample(q.n, size, rng);
    let mut cost = Vec::with_capacity(size * size);
    for &i in &ip {
        let pi = p.row(i);
        for &j in &iq {
            cost.push(sq_dist(pi, q.row(j)).sqrt());
        }
    }
    let a = assignment::solve(&cost, size).map_err(|e| EstimateError::Degenerate(e.to_string()))?;
    Ok(W1Value {
        value: a.cost / size as f64,
        points_p: size,
        points_q: size,
    })
}

/// Sliced W1: the mean over `directions` random unit directions (uniform on the sphere of the
/// span, seeded) of the exact 1-D W1 between the projected clouds. Projection is 1-Lipschitz, so
/// every term, and the mean, is a **lower bound** of W1. Projections run on the backend.
pub fn sliced(
    p: &Coords,
    q: &Coords,
    directions: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<W1Value, EstimateError> {
    if p.n == 0 || q.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "sliced W1",
            have: 0,
            need: 1,
        });
    }
    let d = p.d;
    if d == 0 {
        return Ok(W1Value {
            value: 0.0,
            points_p: p.n,
            points_q: q.n,
        });
    }
    if d == 1 {
        return exact(p, q, usize::MAX, rng);
    }
    let k = directions.max(1);
    // d × k matrix of unit columns
    let mut theta = vec![0.0f32; d * k];
    for c in 0..k {
        let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut *rng)).collect();
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        for (r, x) in v.iter().enumerate() {
            theta[r * k + c] = (x / norm) as f32;
        }
    }
    let theta = Tensor::<2>::from_data(TensorData::new(theta, [d, k]), device);
    let project = |c: &Coords| {
        let x: Vec<f32> = c.data.iter().map(|v| *v as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(x, [c.n, d]), device);
        to_f32_vec(t.matmul(theta.clone())) // [n, k] row-major
    };
    let (pp, qp) = (project(p), project(q));
    let mut total = 0.0;
    let mut a = vec![0.0f64; p.n];
    let mut b = vec![0.0f64; q.n];
    for c in 0..k {
        for (i, v) in a.iter_mut().enumerate() {
            *v = pp[i * k + c] as f64;
        }
        for (j, v) in b.iter_mut().enumerate() {
            *v = qp[j * k + c] as f64;
        }
        total += one_dimensional(&mut a, &mut b);
    }
    Ok(W1Value {
        value: total / k as f64,
        points_p: p.n,
        points_q: q.n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dimensional_matches_hand_computations() {
        // equal sizes: mean |sorted differences|
        assert!((one_dimensional(&mut [3.0, 1.0], &mut [2.0, 5.0]) - 1.5).abs() < 1e-12);
        // {0, 1} vs {0}: half the mass moves by 1
        assert!((one_dimensional(&mut [0.0, 1.0], &mut [0.0]) - 0.5).abs() < 1e-12);
        // {0, 1, 2} vs {0, 2}: quantiles (0,0,2) at thirds vs halves → ∫ = 1/6·1 + 1/6·1 = 1/3
        assert!((one_dimensional(&mut [0.0, 1.0, 2.0], &mut [0.0, 2.0]) - 1.0 / 3.0).abs() < 1e-12);
        // a shift moves every quantile by the shift
        let mut a: Vec<f64> = (0..7).map(|i| i as f64 * 0.3).collect();
        let mut b: Vec<f64> = (0..5).map(|i| i as f64 * 0.42 + 10.0).collect();
        let w = one_dimensional(&mut a, &mut b);
        let mut a2 = a.clone();
        let mut b2: Vec<f64> = b.iter().map(|v| v + 1.0).collect();
        assert!((one_dimensional(&mut a2, &mut b2) - (w + 1.0)).abs() < 1e-9);
    }
}
