//! k-th nearest-neighbour distances by blocked brute force.
//!
//! Squared distances of a block of queries against all base points are computed on the burn
//! backend in matmul form, ‖q‖² + ‖b‖² − 2·q·bᵀ, one `[block, m]` tile at a time (memory
//! O(block·m), never the full n×m matrix). f32 matmul distances lose precision for close
//! points, so they only *select* candidates: the few smallest per row are recomputed exactly in
//! f64 on the host. The result is exact, not approximate: the f32 error of a tile entry is at
//! most δ = (d+2)·ε·(‖q‖² + max‖b‖²) (inputs scaled to max |x| = 1 first, so nothing
//! overflows), and the k-th exact candidate distance is accepted only if it is below the
//! smallest f32 value left outside the candidate set minus 2δ — no excluded point can then be
//! nearer. Rows that fail the test (tight clusters far from the origin, e.g. saturated units)
//! are scanned exactly on the host. Centred inputs (the span projection) keep δ small.

use burn::prelude::*;
use funnel_model::to_f32_vec;

use crate::span::{sq_dist, Coords};

/// Elements of one distance tile (`block × m`): 4M f32 = 16 MiB.
const TILE_ELEMENTS: usize = 1 << 22;
/// Below this many distance evaluations (n·m·d) the host computes everything exactly.
const HOST_WORK: usize = 1 << 21;

/// For every row `i` of `query`, the Euclidean distance to its k-th nearest row of `base`.
///
/// `exclude = Some((query_ids, base_ids))` skips base rows whose id equals the query row's id
/// (e.g. the point itself). Returns `None` for a row that has fewer than `k` eligible
/// neighbours.
pub fn kth_distances(
    query: &Coords,
    base: &Coords,
    k: usize,
    exclude: Option<(&[usize], &[usize])>,
    device: &Device,
) -> Vec<Option<f64>> {
    assert_eq!(query.d, base.d, "knn: dimensions differ");
    assert!(k >= 1, "knn: k must be ≥ 1");
    if query.n == 0 {
        return Vec::new();
    }
    if base.n == 0 {
        return vec![None; query.n];
    }
    if query
        .n
        .saturating_mul(base.n)
        .saturating_mul(query.d.max(1))
        <= HOST_WORK
        || query.d == 0
    {
        return (0..query.n)
            .map(|i| host_scan(query, base, i, k, exclude))
            .collect();
    }
    let m = base.n;
    let d = base.d;
    // scale to max |x| = 1 so squared norms cannot overflow f32; distances scale by 1/s
    let s = query
        .data
        .iter()
        .chain(&base.data)
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if s == 0.0 || !s.is_finite() {
        return (0..query.n)
            .map(|i| host_scan(query, base, i, k, exclude))
            .collect();
    }
    let scaled = |v: &f64| (*v / s) as f32;
    let base_f32: Vec<f32> = base.data.iter().map(scaled).collect();
    let max_base_norm = base_f32
        .chunks_exact(d)
        .map(|r| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let b = Tensor::<2>::from_data(TensorData::new(base_f32, [m, d]), device);
    let b_norm = b.clone().powi_scalar(2).sum_dim(1).transpose(); // [1, m]
    let bt = b.transpose(); // [d, m]
    let block = (TILE_ELEMENTS / m).clamp(1, query.n);
    let candidates = (2 * k + 16).min(m);
    let eps = (d as f64 + 2.0) * f32::EPSILON as f64;
    let mut out = Vec::with_capacity(query.n);
    let mut pairs: Vec<(f32, u32)> = Vec::with_capacity(m);
    let mut start = 0;
    while start < query.n {
        let len = block.min(query.n - start);
        let qdata: Vec<f32> = query.data[start * d..(start + len) * d]
            .iter()
            .map(scaled)
            .collect();
        let q_norms: Vec<f64> = qdata
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>())
            .collect();
        let q = Tensor::<2>::from_data(TensorData::new(qdata, [len, d]), device);
        let q_norm = q.clone().powi_scalar(2).sum_dim(1); // [len, 1]
        let d2 = q.matmul(bt.clone()).mul_scalar(-2.0) + q_norm + b_norm.clone();
        let tile = to_f32_vec(d2);
        for r in 0..len {
            let i = start + r;
            let row = &tile[r * m..(r + 1) * m];
            pairs.clear();
            pairs.extend(row.iter().enumerate().map(|(j, v)| (*v, j as u32)));
            // smallest f32 value outside the candidate set (none when all are candidates)
            let outside = if candidates < m {
                pairs.select_nth_unstable_by(candidates, |a, b| a.0.total_cmp(&b.0));
                Some(pairs[candidates].0 as f64)
            } else {
                None
            };
            let qi = query.row(i);
            let mut exact: Vec<f64> = pairs[..candidates]
                .iter()
                .filter(|(_, j)| !excluded(exclude, i, *j as usize))
                .map(|(_, j)| sq_dist(qi, base.row(*j as usize)))
                .collect();
            if exact.len() < k {
                // many excluded points among the candidates: scan exactly
                out.push(host_scan(query, base, i, k, exclude));
                continue;
            }
            exact.select_nth_unstable_by(k - 1, f64::total_cmp);
            let kth = exact[k - 1];
            let delta = eps * (q_norms[r] + max_base_norm);
            let certain = match outside {
                None => true,
                Some(t) => t.is_finite() && kth / (s * s) <= t - 2.0 * delta,
            };
            out.push(if certain {
                Some(kth.sqrt())
            } else {
                host_scan(query, base, i, k, exclude)
            });
        }
        start += len;
    }
    out
}

fn excluded(exclude: Option<(&[usize], &[usize])>, i: usize, j: usize) -> bool {
    exclude.is_some_and(|(qi, bi)| qi[i] == bi[j])
}

/// Exact k-th neighbour distance of query row `i` by a full scan in f64.
fn host_scan(
    query: &Coords,
    base: &Coords,
    i: usize,
    k: usize,
    exclude: Option<(&[usize], &[usize])>,
) -> Option<f64> {
    let qi = query.row(i);
    let mut d: Vec<f64> = (0..base.n)
        .filter(|&j| !excluded(exclude, i, j))
        .map(|j| sq_dist(qi, base.row(j)))
        .collect();
    if d.len() < k {
        return None;
    }
    d.select_nth_unstable_by(k - 1, f64::total_cmp);
    Some(d[k - 1].sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[allow(deprecated)]
    fn device() -> Device {
        Device::ndarray()
    }

    fn random(n: usize, d: usize, seed: u64) -> Coords {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Coords::new(
            (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect(),
            n,
            d,
        )
    }

    #[test]
    fn backend_tiles_agree_with_exact_host_scan() {
        // large enough for the backend path; duplicates and excluded copies included
        let mut q = random(700, 6, 1);
        let base = random(3000, 6, 2);
        for c in 0..6 {
            q.data[5 * 6 + c] = base.data[17 * 6 + c]; // query 5 sits on base point 17
        }
        let ids_q: Vec<usize> = (0..700).map(|i| i % 50).collect();
        let ids_b: Vec<usize> = (0..3000).map(|j| j % 50).collect();
        for k in [1, 3, 10] {
            for exclude in [None, Some((ids_q.as_slice(), ids_b.as_slice()))] {
                let fast = kth_distances(&q, &base, k, exclude, &device());
                for (i, f) in fast.iter().enumerate() {
                    let slow = host_scan(&q, &base, i, k, exclude);
                    let (a, b) = (f.unwrap(), slow.unwrap());
                    assert!(
                        (a - b).abs() <= 1e-12 * b.max(1.0),
                        "k={k} row {i}: {a} vs {b}"
                    );
                }
                if exclude.is_none() && k == 1 {
                    assert_eq!(fast[5], Some(0.0));
                }
            }
        }
    }

    #[test]
    fn tight_clusters_far_from_the_origin_stay_exact() {
        // saturated-unit-like clouds: corners of a 16-cube with spread 1e-4
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let corner = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| {
            let data = (0..n * 16)
                .map(|j| if (j % 16) % 3 == 0 { 1.0 } else { -1.0 } + 1e-4 * rng.random_range(-1.0..1.0))
                .collect();
            Coords::new(data, n, 16)
        };
        let q = corner(&mut rng, 600);
        let b = corner(&mut rng, 2000);
        let fast = kth_distances(&q, &b, 5, None, &device());
        for (i, f) in fast.iter().enumerate() {
            let slow = host_scan(&q, &b, i, 5, None).unwrap();
            assert!(
                (f.unwrap() - slow).abs() <= 1e-12 * slow,
                "row {i}: {f:?} vs {slow}"
            );
        }
    }

    #[test]
    fn too_few_neighbours_gives_none() {
        let q = random(3, 2, 3);
        let b = random(2, 2, 4);
        assert!(kth_distances(&q, &b, 3, None, &device())
            .iter()
            .all(Option::is_none));
        assert!(kth_distances(&q, &b, 2, None, &device())
            .iter()
            .all(Option::is_some));
    }
}
