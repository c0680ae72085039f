//! Blocked pairwise kernels on the burn backend: squared-distance tiles and row-wise
//! log-sum-exp, the work horses of Sinkhorn and of the Gaussian-mixture densities.
//!
//! A tile is `[block, m]`: a block of query rows against every base row, computed in matmul
//! form ‖q‖² + ‖b‖² − 2·q·bᵀ in f32. Memory is O(block · m) — the full `n × m` matrix never
//! exists unless the caller asks to cache it and it fits [`CACHE_ELEMENTS`]. Inputs are scaled
//! to max |x| = 1 first so no squared norm overflows f32, and distances are scaled back.
//!
//! f32 tiles are accurate to ~1e-7 relative in the *large* distances that dominate a
//! log-sum-exp; callers that need exact costs (the Sinkhorn plan's primal cost) recompute them in
//! f64 on the host.

use burn::prelude::*;
use funnel_model::to_f32_vec;

use crate::span::Coords;

/// Elements of one tile: 4M f32 = 16 MiB.
pub const TILE_ELEMENTS: usize = 1 << 22;
/// Largest number of tile elements a caller may keep on the device across iterations
/// (256 MiB of f32).
pub const CACHE_ELEMENTS: usize = 1 << 26;

/// The largest |x| over both clouds (1 when all are zero), the scale that keeps f32 safe.
pub fn common_scale(a: &Coords, b: &Coords) -> f64 {
    let s = a
        .data
        .iter()
        .chain(&b.data)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if s > 0.0 && s.is_finite() {
        s
    } else {
        1.0
    }
}

/// Uploads `c / scale` as an `[n, d]` f32 tensor.
pub fn upload(c: &Coords, scale: f64, device: &Device) -> Tensor<2> {
    let x: Vec<f32> = c.data.iter().map(|v| (*v / scale) as f32).collect();
    Tensor::<2>::from_data(TensorData::new(x, [c.n, c.d]), device)
}

/// Rows per tile against `m` base points.
pub fn block_rows(m: usize, n: usize) -> usize {
    (TILE_ELEMENTS / m.max(1)).clamp(1, n.max(1))
}

/// A base cloud on the device, ready for squared-distance tiles against query blocks.
pub struct Base {
    /// `[d, m]`, scaled.
    bt: Tensor<2>,
    /// `[1, m]` squared norms, scaled.
    norms: Tensor<2>,
    scale: f64,
    pub m: usize,
}

impl Base {
    pub fn new(base: &Coords, scale: f64, device: &Device) -> Self {
        let b = upload(base, scale, device);
        let norms = b.clone().powi_scalar(2).sum_dim(1).transpose();
        Base {
            bt: b.transpose(),
            norms,
            scale,
            m: base.n,
        }
    }

    /// Squared distances `[len, m]` (original units, clamped at 0) between the query rows
    /// `q` (an `[len, d]` tensor scaled by the same scale) and every base row.
    pub fn sq_dist(&self, q: Tensor<2>) -> Tensor<2> {
        let q_norm = q.clone().powi_scalar(2).sum_dim(1); // [len, 1]
        (q.matmul(self.bt.clone()).mul_scalar(-2.0) + q_norm + self.norms.clone())
            .clamp_min(0.0)
            .mul_scalar(self.scale * self.scale)
    }
}

/// Row-wise log Σ_j exp(x_ij) of `[len, m]`, stable (max subtracted), as `[len, 1]`.
pub fn log_sum_exp_rows(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().max_dim(1); // [len, 1]
    (x - max.clone()).exp().sum_dim(1).log() + max
}

impl Base {
    /// For each row x_i of `query` (host coordinates, processed in tiles), ln Σ_j
    /// exp(−‖x_i − b_j‖² / (2β²)) over the base rows b_j: the log of the unnormalised
    /// Gaussian-mixture density with centres `base` and width β. One f64 per query row.
    pub fn mixture_log_kernel(&self, query: &Coords, beta: f64, device: &Device) -> Vec<f64> {
        let block = block_rows(self.m, query.n);
        let inv = -1.0 / (2.0 * beta * beta);
        let mut out = Vec::with_capacity(query.n);
        let mut start = 0;
        while start < query.n {
            let len = block.min(query.n - start);
            let rows = Coords::new(
                query.data[start * query.d..(start + len) * query.d].to_vec(),
                len,
                query.d,
            );
            let q = upload(&rows, self.scale, device);
            let lse = log_sum_exp_rows(self.sq_dist(q).mul_scalar(inv));
            out.extend(to_f32_vec(lse).into_iter().map(f64::from));
            start += len;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::sq_dist;
    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn mixture_kernel_matches_a_host_computation() {
        let q = Coords::new(
            (0..40)
                .map(|i| ((i * 37) % 11) as f64 * 0.3 - 1.0)
                .collect(),
            10,
            4,
        );
        let b = Coords::new(
            (0..60)
                .map(|i| ((i * 53) % 13) as f64 * 0.2 - 1.3)
                .collect(),
            15,
            4,
        );
        let beta = 0.7;
        let base = Base::new(&b, common_scale(&q, &b), &device());
        let fast = base.mixture_log_kernel(&q, beta, &device());
        for (i, f) in fast.iter().enumerate() {
            let terms: Vec<f64> = (0..b.n)
                .map(|j| -sq_dist(q.row(i), b.row(j)) / (2.0 * beta * beta))
                .collect();
            let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let slow = m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
            assert!(
                (f - slow).abs() < 1e-4 * slow.abs().max(1.0),
                "{f} vs {slow}"
            );
        }
    }
}
