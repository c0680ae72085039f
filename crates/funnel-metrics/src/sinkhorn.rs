//! Entropic optimal transport (Sinkhorn) as an **upper bound** of the empirical W1.
//!
//! Log-domain Sinkhorn iterations run on the burn backend in tiles ([`crate::tiles`]): with
//! uniform weights a = 1/n, b = 1/m, cost C_ij = ‖p_i − q_j‖ and potentials f, g,
//!
//!   f_i ← ε·ln a_i − ε·ln Σ_j exp((g_j − C_ij)/ε),   g_j ← ε·ln b_j − ε·ln Σ_i exp((f_i − C_ij)/ε),
//!
//! the plan being P_ij = exp((f_i + g_j − C_ij)/ε). ε is annealed from the mean cost down to
//! `epsilon · mean cost` (ε-scaling), the potentials carried across stages.
//!
//! Whatever the potentials, the plan is then **rounded** to an exact coupling of the two
//! uniform measures (Altschuler, Weed & Rigollet 2017, Alg. 2): rows scaled down to their
//! marginal, then columns, then the missing mass added as a rank-one term. Its primal cost
//! Σ P'_ij C_ij, with C recomputed in f64 on the host, is the cost of a feasible transport plan
//! and therefore never below the empirical W1: the reported value is an upper bound whose gap
//! shrinks with ε. The rounding and the cost need two streaming passes over the rows (row sums,
//! then column sums of the scaled plan), so no `n × m` matrix is stored.

use burn::prelude::*;
use funnel_model::to_f32_vec;
use nalgebra::DMatrix;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::span::{sq_dist, Coords};
use crate::tiles::{block_rows, common_scale, log_sum_exp_rows, upload, Base, CACHE_ELEMENTS};
use crate::w1::{one_dimensional, subsample, W1Value};
use crate::EstimateError;

/// Settings of one Sinkhorn solve.
#[derive(Clone, Copy, Debug)]
pub struct SinkhornSettings {
    /// Final ε relative to the mean pairwise distance.
    pub epsilon: f64,
    /// Points per side (subsampled without replacement above it).
    pub max_points: usize,
    /// Iteration cap per ε stage.
    pub iterations: usize,
}

/// A Sinkhorn upper bound and how it was reached.
#[derive(Clone, Debug)]
pub struct SinkhornValue {
    pub w1: W1Value,
    /// Final ε in cost units.
    pub epsilon: f64,
    /// Iterations over all stages.
    pub iterations: usize,
    /// ‖P1 − a‖₁ of the last plan before rounding.
    pub marginal_error: f64,
    /// Whether the last stage reached its tolerance.
    pub converged: bool,
}

/// Marginal error at which a stage stops (the rounding repairs whatever is left).
const STAGE_TOLERANCE: f64 = 1e-2;
const FINAL_TOLERANCE: f64 = 1e-4;

/// Pairs sampled to estimate the mean distance that ε is relative to.
const MEAN_PAIRS: usize = 20_000;

/// One side's cost tiles (rows of this side against all points of the other), cached on the
/// device when they fit, recomputed otherwise.
struct Tiles {
    query: Tensor<2>,
    base: Base,
    block: usize,
    n: usize,
    cache: Option<Vec<Tensor<2>>>,
}

impl Tiles {
    fn new(query: &Coords, base: &Coords, scale: f64, cache: bool, device: &Device) -> Self {
        let mut t = Tiles {
            query: upload(query, scale, device),
            base: Base::new(base, scale, device),
            block: block_rows(base.n, query.n),
            n: query.n,
            cache: None,
        };
        if cache {
            let tiles = (0..t.blocks()).map(|b| t.compute(b)).collect();
            t.cache = Some(tiles);
        }
        t
    }

    fn blocks(&self) -> usize {
        self.n.div_ceil(self.block)
    }

    fn compute(&self, b: usize) -> Tensor<2> {
        let start = b * self.block;
        let len = self.block.min(self.n - start);
        self.base
            .sq_dist(self.query.clone().narrow(0, start, len))
            .sqrt()
    }

    fn tile(&self, b: usize) -> Tensor<2> {
        match &self.cache {
            Some(c) => c[b].clone(),
            None => self.compute(b),
        }
    }

    /// New potentials of this side: ε·ln(1/n) − ε·lse_j((other_j − C_ij)/ε), `[n, 1]`.
    /// `other` is the other side's potentials as a `[1, m]` row.
    fn update(&self, other: &Tensor<2>, eps: f64) -> Tensor<2> {
        let log_w = -(self.n as f64).ln();
        let parts: Vec<Tensor<2>> = (0..self.blocks())
            .map(|b| {
                let x = (other.clone() - self.tile(b)).div_scalar(eps);
                log_sum_exp_rows(x).mul_scalar(-eps).add_scalar(eps * log_w)
            })
            .collect();
        Tensor::cat(parts, 0)
    }
}

/// Mean pairwise distance, from up to [`MEAN_PAIRS`] random pairs (all pairs when fewer).
fn mean_distance(p: &Coords, q: &Coords, rng: &mut ChaCha8Rng) -> f64 {
    let total = p.n * q.n;
    if total <= MEAN_PAIRS {
        let mut s = 0.0;
        for i in 0..p.n {
            for j in 0..q.n {
                s += sq_dist(p.row(i), q.row(j)).sqrt();
            }
        }
        return s / total as f64;
    }
    let mut s = 0.0;
    for _ in 0..MEAN_PAIRS {
        let (i, j) = (rng.random_range(0..p.n), rng.random_range(0..q.n));
        s += sq_dist(p.row(i), q.row(j)).sqrt();
    }
    s / MEAN_PAIRS as f64
}

/// Exact f64 distances of rows `start..start+len` of `p` to all of `q`, row-major `[len, m]`
/// (matmul form in f64; its round-off, ~1e-16·‖x‖², is far below anything reported).
fn host_costs(
    p: &Coords,
    q_t: &DMatrix<f64>,
    q_norms: &[f64],
    start: usize,
    len: usize,
) -> Vec<f64> {
    let d = p.d;
    let x = DMatrix::from_row_slice(len, d, &p.data[start * d..(start + len) * d]);
    let g = x * q_t; // [len, m]
    let m = q_norms.len();
    let mut out = vec![0.0; len * m];
    for r in 0..len {
        let pn: f64 = p.row(start + r).iter().map(|v| v * v).sum();
        for j in 0..m {
            out[r * m + j] = (pn + q_norms[j] - 2.0 * g[(r, j)]).max(0.0).sqrt();
        }
    }
    out
}

/// Rounds the plan of potentials (f, g) at ε to an exact coupling of the uniform measures and
/// returns its primal cost, streaming over row blocks in f64.
fn rounded_cost(p: &Coords, q: &Coords, f: &[f64], g: &[f64], eps: f64) -> f64 {
    let (n, m) = (p.n, q.n);
    let (a, b) = (1.0 / n as f64, 1.0 / m as f64);
    let q_t = DMatrix::from_row_slice(m, q.d, &q.data).transpose();
    let q_norms: Vec<f64> = (0..m)
        .map(|j| q.row(j).iter().map(|v| v * v).sum())
        .collect();
    let block = (1 << 20) / m.max(1);
    let block = block.clamp(1, n);
    let plan_row = |costs: &[f64], i: usize, out: &mut Vec<f64>| {
        out.clear();
        out.extend(
            costs
                .iter()
                .zip(g)
                .map(|(c, gj)| ((f[i] + gj - c) / eps).exp()),
        );
    };
    // pass 1: row scaling x_i = min(a / r_i, 1), column sums of diag(x)·P
    let mut x = vec![0.0; n];
    let mut col = vec![0.0; m];
    let mut row_buf = Vec::with_capacity(m);
    let mut start = 0;
    while start < n {
        let len = block.min(n - start);
        let costs = host_costs(p, &q_t, &q_norms, start, len);
        for r in 0..len {
            let i = start + r;
            plan_row(&costs[r * m..(r + 1) * m], i, &mut row_buf);
            let s: f64 = row_buf.iter().sum();
            x[i] = if s > a { a / s } else { 1.0 };
            for (c, v) in col.iter_mut().zip(&row_buf) {
                *c += x[i] * v;
            }
        }
        start += len;
    }
    let y: Vec<f64> = col
        .iter()
        .map(|&c| if c > b { b / c } else { 1.0 })
        .collect();
    // pass 2: cost of Y = diag(x)·P·diag(y), its marginals, and h_j = Σ_i err_r_i·C_ij
    let mut cost = 0.0;
    let mut col_y = vec![0.0; m];
    let mut err_r = vec![0.0; n];
    let mut h = vec![0.0; m];
    start = 0;
    while start < n {
        let len = block.min(n - start);
        let costs = host_costs(p, &q_t, &q_norms, start, len);
        for r in 0..len {
            let i = start + r;
            let crow = &costs[r * m..(r + 1) * m];
            plan_row(crow, i, &mut row_buf);
            let mut rs = 0.0;
            for j in 0..m {
                let v = x[i] * row_buf[j] * y[j];
                rs += v;
                col_y[j] += v;
                cost += v * crow[j];
            }
            err_r[i] = (a - rs).max(0.0);
            if err_r[i] > 0.0 {
                for j in 0..m {
                    h[j] += err_r[i] * crow[j];
                }
            }
        }
        start += len;
    }
    let mass: f64 = err_r.iter().sum();
    if mass > 0.0 {
        // rank-one completion err_r·err_cᵀ/‖err_r‖₁; its cost is Σ_j err_c_j·h_j / ‖err_r‖₁
        let extra: f64 = col_y
            .iter()
            .zip(&h)
            .map(|(c, hj)| (b - c).max(0.0) * hj)
            .sum();
        cost += extra / mass;
    }
    cost
}

/// Sinkhorn upper bound of the empirical W1 between `p` and `q` (any sizes; each side
/// subsampled to `settings.max_points`). 1-D clouds get the exact sorted W1 instead (which is
/// its own upper bound).
pub fn sinkhorn(
    p: &Coords,
    q: &Coords,
    settings: &SinkhornSettings,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<SinkhornValue, EstimateError> {
    if p.n == 0 || q.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "sinkhorn W1",
            have: 0,
            need: 1,
        });
    }
    let exact = |value: f64, np: usize, nq: usize| SinkhornValue {
        w1: W1Value {
            value,
            points_p: np,
            points_q: nq,
        },
        epsilon: 0.0,
        iterations: 0,
        marginal_error: 0.0,
        converged: true,
    };
    if p.d == 0 {
        return Ok(exact(0.0, p.n, q.n));
    }
    if p.d == 1 {
        let (mut a, mut b) = (p.data.clone(), q.data.clone());
        return Ok(exact(one_dimensional(&mut a, &mut b), p.n, q.n));
    }
    let p = p.select(&subsample(p.n, settings.max_points, rng));
    let q = q.select(&subsample(q.n, settings.max_points, rng));
    let (n, m) = (p.n, q.n);
    let mean = mean_distance(&p, &q, rng);
    if mean == 0.0 {
        return Ok(exact(0.0, n, m));
    }
    let scale = common_scale(&p, &q);
    let cache = 2 * n * m <= CACHE_ELEMENTS;
    let rows = Tiles::new(&p, &q, scale, cache, device);
    let cols = Tiles::new(&q, &p, scale, cache, device);
    let target = settings.epsilon * mean;
    let mut f = Tensor::<2>::zeros([n, 1], device);
    let mut g = Tensor::<2>::zeros([m, 1], device);
    let mut eps = mean.max(target);
    let mut iterations = 0;
    let mut marginal_error = f64::INFINITY;
    let mut converged;
    loop {
        let last = eps <= target;
        let tol = if last {
            FINAL_TOLERANCE
        } else {
            STAGE_TOLERANCE
        };
        converged = false;
        for _ in 0..settings.iterations {
            let f_new = rows.update(&g.clone().transpose(), eps);
            // row marginal of the current plan: a_i·exp((f_i − f_new_i)/ε)
            let diff = to_f32_vec((f.clone() - f_new.clone()).div_scalar(eps));
            marginal_error = diff
                .iter()
                .map(|v| ((*v as f64).exp() - 1.0).abs())
                .sum::<f64>()
                / n as f64;
            f = f_new;
            g = cols.update(&f.clone().transpose(), eps);
            iterations += 1;
            if marginal_error < tol {
                converged = true;
                break;
            }
        }
        if last {
            break;
        }
        eps = (eps / 2.0).max(target);
    }
    let f: Vec<f64> = to_f32_vec(f).into_iter().map(f64::from).collect();
    let g: Vec<f64> = to_f32_vec(g).into_iter().map(f64::from).collect();
    if f.iter().chain(&g).any(|v| !v.is_finite()) {
        return Err(EstimateError::Degenerate(
            "sinkhorn potentials are not finite (ε too small for f32? raise sinkhorn_epsilon)"
                .into(),
        ));
    }
    let value = rounded_cost(&p, &q, &f, &g, eps);
    Ok(SinkhornValue {
        w1: W1Value {
            value,
            points_p: n,
            points_q: m,
        },
        epsilon: eps,
        iterations,
        marginal_error,
        converged,
    })
}
