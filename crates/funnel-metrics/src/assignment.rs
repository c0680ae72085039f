//! Linear sum assignment for dense square cost matrices.
//!
//! Written by hand: the Rust crates that solve assignment either take integer weights
//! (`pathfinding::kuhn_munkres` needs `Ord`) or are thin and unmaintained; exact W1 needs f64
//! costs and a well-understood algorithm. This is the shortest-augmenting-path method of
//! Jonker & Volgenant in the form of Crouse (2016), the algorithm behind SciPy's
//! `linear_sum_assignment`: for each row, a Dijkstra-like search over reduced costs finds the
//! shortest augmenting path, and the dual potentials are updated so reduced costs stay ≥ 0.
//! O(n³) in the worst case, far less on random Euclidean costs.

/// Why an assignment could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssignmentError {
    #[error("cost matrix has {len} entries, not {n}×{n}")]
    Shape { len: usize, n: usize },
    #[error("cost matrix contains a non-finite entry")]
    NonFinite,
}

/// The optimal assignment: `col_of_row[i]` is the column matched to row i, `cost` the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub col_of_row: Vec<usize>,
    pub cost: f64,
}

/// Minimises Σ_i cost[i, σ(i)] over permutations σ; `cost` is row-major `n × n`.
pub fn solve(cost: &[f64], n: usize) -> Result<Assignment, AssignmentError> {
    if cost.len() != n * n {
        return Err(AssignmentError::Shape { len: cost.len(), n });
    }
    if cost.iter().any(|c| !c.is_finite()) {
        return Err(AssignmentError::NonFinite);
    }
    const NONE: usize = usize::MAX;
    let mut u = vec![0.0f64; n]; // row potentials
    let mut v = vec![0.0f64; n]; // column potentials
    let mut col4row = vec![NONE; n];
    let mut row4col = vec![NONE; n];
    let mut path = vec![NONE; n];
    let mut shortest = vec![f64::INFINITY; n];
    let mut in_sr = vec![false; n];
    let mut in_sc = vec![false; n];
    let mut remaining = vec![0usize; n];

    for cur_row in 0..n {
        // --- shortest augmenting path from cur_row ---
        let mut min_val = 0.0f64;
        let mut num_remaining = n;
        for (it, r) in remaining.iter_mut().enumerate() {
            // reversed order: prefer low column indices on ties, like SciPy
            *r = n - it - 1;
        }
        in_sr.iter_mut().for_each(|x| *x = false);
        in_sc.iter_mut().for_each(|x| *x = false);
        shortest.iter_mut().for_each(|x| *x = f64::INFINITY);
        let mut sink = NONE;
        let mut i = cur_row;
        while sink == NONE {
            let mut index = NONE;
            let mut lowest = f64::INFINITY;
            in_sr[i] = true;
            let row = &cost[i * n..(i + 1) * n];
            let ui = u[i];
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let r = min_val + row[j] - ui - v[j];
                if r < shortest[j] {
                    path[j] = i;
                    shortest[j] = r;
                }
                if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == NONE) {
                    lowest = shortest[j];
                    index = it;
                }
            }
            min_val = lowest;
            // square and finite: a path always exists
            let j = remaining[index];
            if row4col[j] == NONE {
                sink = j;
            } else {
                i = row4col[j];
            }
            in_sc[j] = true;
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
        }
        // --- update potentials ---
        u[cur_row] += min_val;
        for r in 0..n {
            if in_sr[r] && r != cur_row {
                u[r] += min_val - shortest[col4row[r]];
            }
        }
        for c in 0..n {
            if in_sc[c] {
                v[c] -= min_val - shortest[c];
            }
        }
        // --- augment along the path ---
        let mut j = sink;
        loop {
            let r = path[j];
            row4col[j] = r;
            std::mem::swap(&mut col4row[r], &mut j);
            if r == cur_row {
                break;
            }
        }
    }
    let total = (0..n).map(|i| cost[i * n + col4row[i]]).sum();
    Ok(Assignment {
        col_of_row: col4row,
        cost: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn brute_force(cost: &[f64], n: usize) -> f64 {
        fn rec(cost: &[f64], n: usize, row: usize, used: &mut [bool], acc: f64, best: &mut f64) {
            if row == n {
                *best = best.min(acc);
                return;
            }
            for c in 0..n {
                if !used[c] {
                    used[c] = true;
                    rec(cost, n, row + 1, used, acc + cost[row * n + c], best);
                    used[c] = false;
                }
            }
        }
        let mut best = f64::INFINITY;
        rec(cost, n, 0, &mut vec![false; n], 0.0, &mut best);
        best
    }

    #[test]
    fn matches_brute_force_on_random_matrices() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for n in 1..=7 {
            for trial in 0..30 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| {
                        if trial % 3 == 0 {
                            rng.random_range(0..4) as f64 // many ties
                        } else {
                            rng.random_range(-5.0..5.0)
                        }
                    })
                    .collect();
                let a = solve(&cost, n).unwrap();
                let mut cols = a.col_of_row.clone();
                cols.sort_unstable();
                assert_eq!(cols, (0..n).collect::<Vec<_>>(), "not a permutation");
                let bf = brute_force(&cost, n);
                assert!((a.cost - bf).abs() < 1e-9, "n={n}: {} vs {bf}", a.cost);
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            solve(&[1.0, 2.0, 3.0], 2),
            Err(AssignmentError::Shape { len: 3, n: 2 })
        );
        assert_eq!(
            solve(&[1.0, f64::NAN, 3.0, 4.0], 2),
            Err(AssignmentError::NonFinite)
        );
        assert_eq!(solve(&[], 0).unwrap().cost, 0.0);
    }
}
