//! k-th nearest-neighbour distances by blocked brute force.
//!
//! Squared distances of a block of queries against all base points are computed in matmul
//! form, ‖q‖² + ‖b‖² − 2·q·bᵀ: the products q·bᵀ on the burn backend, one `[block, m]` tile at
//! a time (memory O(block·m), never the full n×m matrix), the norms added on the host while
//! each row's smallest entries are picked (rows split across the cores). f32 matmul distances
//! lose precision for close points, so they only *select* candidates: the few smallest per row
//! are recomputed exactly in f64 on the host. The result is exact, not approximate: the error
//! of a tile entry (input rounding to f32, the f32 matmul, the norms) is at most
//! δ = (d+4)·ε·(‖q‖² + max‖b‖²) (inputs scaled to max |x| = 1 first, so nothing overflows), and
//! the k-th exact candidate distance is accepted only if it is below the smallest approximate
//! value left outside the candidate set minus 2δ — no excluded point can then be
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
    // ‖b‖² in f32 for the host-side assembly of the squared distances
    let b_norm: Vec<f32> = base_f32
        .chunks_exact(d)
        .map(|r| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() as f32)
        .collect();
    let bt = Tensor::<2>::from_data(TensorData::new(base_f32, [m, d]), device).transpose(); // [d, m]
    let block = (TILE_ELEMENTS / m).clamp(1, query.n);
    let candidates = (2 * k + 16).min(m);
    // error of a tile entry ‖b‖² − 2·q·b (f32 matmul: d·ε·‖q‖‖b‖ doubled; ‖b‖² rounded; one
    // subtraction) plus ‖q‖² added in f64: at most (d + 4)·ε·(‖q‖² + max‖b‖²)
    let eps = (d as f64 + 4.0) * f32::EPSILON as f64;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let mut out = Vec::with_capacity(query.n);
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
        let tile = to_f32_vec(q.matmul(bt.clone())); // q·bᵀ, [len, m]
                                                     // rows of the tile are independent: split them across the cores
        let per = len.div_ceil(threads).max(1);
        let row_out = |r0: usize, r1: usize| -> Vec<Option<f64>> {
            let mut best: Vec<(f32, u32)> = Vec::with_capacity(candidates + 1);
            (r0..r1)
                .map(|r| {
                    let i = start + r;
                    let row = &tile[r * m..(r + 1) * m];
                    let outside = smallest(row, &b_norm, candidates, &mut best);
                    certified_kth(query, base, i, k, exclude, &best[..candidates], || {
                        // smallest approximate squared distance outside the candidates (scaled)
                        outside.map(|t| {
                            let delta = eps * (q_norms[r] + max_base_norm);
                            (q_norms[r] + t as f64 - 2.0 * delta) * s * s
                        })
                    })
                })
                .collect()
        };
        if threads <= 1 || len < 2 * threads {
            out.extend(row_out(0, len));
        } else {
            let parts: Vec<Vec<Option<f64>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..len)
                    .step_by(per)
                    .map(|r0| {
                        let row_out = &row_out;
                        scope.spawn(move || row_out(r0, (r0 + per).min(len)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("knn worker panicked"))
                    .collect()
            });
            out.extend(parts.into_iter().flatten());
        }
        start += len;
    }
    out
}

/// The `count` smallest entries of `‖b_j‖² − 2·dot_j` (ascending, as `(value, j)`) are left
/// in `best[..count]`; returns the (count+1)-th smallest value, a lower bound for every entry
/// not among them (`None` when the row has no more than `count` entries). One pass with a
/// bounded insertion buffer: on a random row only O(count·log(m/count)) entries get inserted.
fn smallest(dots: &[f32], b_norm: &[f32], count: usize, best: &mut Vec<(f32, u32)>) -> Option<f32> {
    let keep = count + 1;
    best.clear();
    let mut threshold = f32::INFINITY;
    for (j, (&dot, &bn)) in dots.iter().zip(b_norm).enumerate() {
        let v = bn - 2.0 * dot;
        // NaN never enters (inputs are scaled finite values)
        if v < threshold {
            let at = best.partition_point(|e| e.0 <= v);
            if best.len() == keep {
                best.pop();
            }
            best.insert(at, (v, j as u32));
            if best.len() == keep {
                threshold = best[keep - 1].0;
            }
        }
    }
    (best.len() == keep).then(|| best[count].0)
}

/// The exact k-th distance of query row `i` among the candidate base rows, if certified by the
/// bound `outside()` (a lower bound, in unscaled squared units, on the squared distance of every
/// non-candidate; `None` when there is none); otherwise a full exact scan.
fn certified_kth(
    query: &Coords,
    base: &Coords,
    i: usize,
    k: usize,
    exclude: Option<(&[usize], &[usize])>,
    candidates: &[(f32, u32)],
    outside: impl Fn() -> Option<f64>,
) -> Option<f64> {
    let qi = query.row(i);
    let mut exact: Vec<f64> = candidates
        .iter()
        .filter(|(_, j)| !excluded(exclude, i, *j as usize))
        .map(|(_, j)| sq_dist(qi, base.row(*j as usize)))
        .collect();
    if exact.len() < k {
        // many excluded points among the candidates: scan exactly
        return host_scan(query, base, i, k, exclude);
    }
    exact.select_nth_unstable_by(k - 1, f64::total_cmp);
    let kth = exact[k - 1];
    let certain = match outside() {
        None => true,
        Some(t) => t.is_finite() && kth <= t,
    };
    if certain {
        Some(kth.sqrt())
    } else {
        host_scan(query, base, i, k, exclude)
    }
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
    fn device() -> Device {
        Device::flex()
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
    fn smallest_keeps_the_candidates_and_bounds_the_rest() {
        use rand::RngExt;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut best = Vec::new();
        for trial in 0..50 {
            let m = rng.random_range(1..300);
            let count = rng.random_range(1..40);
            // trial % 2: values from a tiny set, so ties straddle the candidate boundary
            let dots: Vec<f32> = (0..m)
                .map(|_| {
                    if trial % 2 == 0 {
                        rng.random_range(-1.0..1.0)
                    } else {
                        rng.random_range(0..3) as f32
                    }
                })
                .collect();
            let norms: Vec<f32> = (0..m).map(|_| rng.random_range(0.0..2.0)).collect();
            let values: Vec<f32> = dots.iter().zip(&norms).map(|(d, b)| b - 2.0 * d).collect();
            let outside = smallest(&dots, &norms, count, &mut best);
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            if m <= count {
                assert_eq!(outside, None);
                assert_eq!(best.len(), m);
                continue;
            }
            // the kept entries are the `count` smallest values, with their own indices
            let kept: Vec<f32> = best[..count].iter().map(|e| e.0).collect();
            assert_eq!(kept, sorted[..count].to_vec(), "trial {trial}");
            for &(v, j) in &best[..count] {
                assert_eq!(v, values[j as usize]);
            }
            // and the bound is the next value: no entry left out lies below it
            let t = outside.unwrap();
            assert_eq!(t, sorted[count]);
            let inside: Vec<u32> = best[..count].iter().map(|e| e.1).collect();
            for (j, v) in values.iter().enumerate() {
                assert!(inside.contains(&(j as u32)) || *v >= t);
            }
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
