//! Linear sum assignment for dense square cost matrices.
//!
//! Written by hand: the Rust crates that solve assignment either take integer weights
//! (`pathfinding::kuhn_munkres` needs `Ord`), approximate (auction / ε-scaling), or are thin and
//! unmaintained; none solves dense f64 problems of thousands of rows quickly and exactly, which
//! exact W1 needs. This is the algorithm of Jonker & Volgenant (1987, "LAPJV"), in the form of
//! the widely used `lap` C implementation:
//!
//! 1. *column reduction*: every column's potential is its smallest cost, and each row that is the
//!    minimum of some column takes one of them;
//! 2. *reduction transfer*: a row that owns exactly one column minimum passes its slack to that
//!    column's potential;
//! 3. *augmenting row reduction* (two passes): each free row takes its cheapest column under the
//!    current potentials, lowering that column's potential by the gap to the second cheapest and
//!    evicting its owner, who then looks again — an auction-like sweep that matches most rows on
//!    random dense problems without any search;
//! 4. *augmentation*: for each row still free, a Dijkstra search over reduced costs finds the
//!    shortest augmenting path, and the potentials are updated so reduced costs stay ≥ 0.
//!
//! Phases 1–3 only produce a good starting point (a partial assignment and column potentials v
//! such that every assigned row's column minimises c_ij − v_j); phase 4 is the exact
//! shortest-augmenting-path method, so the result is an optimal assignment (up to f64 round-off
//! in the potentials), not an approximation. The solver returns the dual potentials as a
//! certificate: u_i + v_j ≤ c_ij for all i, j, with equality on the assignment, proves
//! optimality independently of the algorithm. O(n³) in the worst case, far less on random
//! Euclidean costs.

/// Why an assignment could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssignmentError {
    #[error("cost matrix has {len} entries, not {n}×{n}")]
    Shape { len: usize, n: usize },
    #[error("cost matrix contains a non-finite entry")]
    NonFinite,
}

/// The optimal assignment: `col_of_row[i]` is the column matched to row i, `cost` the total.
///
/// `row_potential` (u) and `col_potential` (v) are the dual solution: u_i + v_j ≤ c_ij for all
/// i, j (up to round-off), with equality when j = `col_of_row[i]`; hence Σu + Σv = `cost` is a
/// lower bound on every assignment's cost and the assignment is optimal.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub col_of_row: Vec<usize>,
    pub cost: f64,
    pub row_potential: Vec<f64>,
    pub col_potential: Vec<f64>,
}

const NONE: usize = usize::MAX;

/// Budget of one augmenting-row-reduction pass, in row reductions per row.
const ROW_REDUCTIONS_PER_ROW: usize = 4;

/// Minimises Σ_i cost[i, σ(i)] over permutations σ; `cost` is row-major `n × n`.
pub fn solve(cost: &[f64], n: usize) -> Result<Assignment, AssignmentError> {
    if cost.len() != n * n {
        return Err(AssignmentError::Shape { len: cost.len(), n });
    }
    if cost.iter().any(|c| !c.is_finite()) {
        return Err(AssignmentError::NonFinite);
    }
    let mut s = Solver {
        cost,
        n,
        x: vec![NONE; n],
        y: vec![NONE; n],
        v: vec![0.0; n],
    };
    if n > 0 {
        let mut free = s.column_reduction();
        for _ in 0..2 {
            if free.is_empty() {
                break;
            }
            free = s.augmenting_row_reduction(&free);
        }
        s.augment(&free);
    }
    let Solver { x, v, .. } = s;
    let u: Vec<f64> = (0..n).map(|i| cost[i * n + x[i]] - v[x[i]]).collect();
    let total = (0..n).map(|i| cost[i * n + x[i]]).sum();
    Ok(Assignment {
        col_of_row: x,
        cost: total,
        row_potential: u,
        col_potential: v,
    })
}

/// Solver state: `x[i]` the column of row i, `y[j]` the row of column j (`NONE` when free),
/// `v` the column potentials. Invariant between phases: every assigned row i has
/// c[i][x[i]] − v[x[i]] = min_j (c[i][j] − v[j]).
struct Solver<'a> {
    cost: &'a [f64],
    n: usize,
    x: Vec<usize>,
    y: Vec<usize>,
    v: Vec<f64>,
}

impl Solver<'_> {
    fn row(&self, i: usize) -> &[f64] {
        &self.cost[i * self.n..(i + 1) * self.n]
    }

    /// Column reduction and reduction transfer; returns the free rows.
    fn column_reduction(&mut self) -> Vec<usize> {
        let n = self.n;
        // v_j = min_i c_ij, with the (first) row attaining it; rows in order keep this
        // cache-friendly
        self.v.copy_from_slice(&self.cost[..n]);
        let mut argmin = vec![0usize; n];
        for i in 1..n {
            let row = &self.cost[i * n..(i + 1) * n];
            for ((vj, aj), &c) in self.v.iter_mut().zip(argmin.iter_mut()).zip(row) {
                if c < *vj {
                    *vj = c;
                    *aj = i;
                }
            }
        }
        // each row takes at most one of the columns it minimises (scanning columns downwards,
        // like `lap`); the others stay free
        let mut unique = vec![true; n];
        for j in (0..n).rev() {
            let i = argmin[j];
            if self.x[i] == NONE {
                self.x[i] = j;
                self.y[j] = i;
            } else {
                unique[i] = false;
            }
        }
        let mut free = Vec::new();
        for (i, &is_unique) in unique.iter().enumerate() {
            if self.x[i] == NONE {
                free.push(i);
            } else if is_unique {
                // reduction transfer: lower v_j by the row's slack to its second-best column
                let j = self.x[i];
                let row = self.row(i);
                let mut min = f64::INFINITY;
                for (j2, (&c, &vj2)) in row.iter().zip(&self.v).enumerate() {
                    if j2 != j {
                        min = min.min(c - vj2);
                    }
                }
                if min.is_finite() {
                    self.v[j] -= min;
                }
            }
        }
        free
    }

    /// One pass of augmenting row reduction over `free`; returns the rows still free.
    fn augmenting_row_reduction(&mut self, free: &[usize]) -> Vec<usize> {
        let n = self.n;
        let mut queue = free.to_vec();
        let mut still_free = Vec::new();
        let mut current = 0usize;
        let mut count = 0usize;
        // Each reduction costs a row scan, O(n). On Euclidean costs the evictions go on for long
        // in tiny steps (like an auction with a small ε), so a pass stops after
        // `ROW_REDUCTIONS_PER_ROW · n` of them and leaves the rest to the exact search; with
        // 4, n = 4000 and d = 32 this roughly halves the total time of an unlimited pass.
        let budget = ROW_REDUCTIONS_PER_ROW * n;
        while current < queue.len() {
            count += 1;
            if count > budget {
                still_free.extend_from_slice(&queue[current..]);
                break;
            }
            let i = queue[current];
            current += 1;
            // the two smallest reduced costs c_ij − v_j of row i
            let row = &self.cost[i * n..(i + 1) * n];
            let (mut j1, mut u1) = (0usize, row[0] - self.v[0]);
            let (mut j2, mut u2) = (NONE, f64::INFINITY);
            for (j, (&c, &vj)) in row.iter().zip(&self.v).enumerate().skip(1) {
                let h = c - vj;
                if h < u2 {
                    if h >= u1 {
                        u2 = h;
                        j2 = j;
                    } else {
                        u2 = u1;
                        j2 = j1;
                        u1 = h;
                        j1 = j;
                    }
                }
            }
            let mut i0 = self.y[j1];
            let v1_new = self.v[j1] - (u2 - u1);
            let lowers = v1_new < self.v[j1];
            // the count guard stops endless ping-pong on ties and round-off (as in `lap`)
            if count < current * n {
                if lowers {
                    self.v[j1] = v1_new;
                } else if i0 != NONE && j2 != NONE {
                    j1 = j2;
                    i0 = self.y[j2];
                }
                if i0 != NONE {
                    if lowers {
                        // the evicted row is looked at next
                        current -= 1;
                        queue[current] = i0;
                    } else {
                        still_free.push(i0);
                    }
                }
            } else if i0 != NONE {
                still_free.push(i0);
            }
            if i0 != NONE {
                self.x[i0] = NONE;
            }
            self.x[i] = j1;
            self.y[j1] = i;
        }
        still_free
    }

    /// Shortest augmenting paths (Dijkstra over reduced costs) from every row in `free`.
    fn augment(&mut self, free: &[usize]) {
        let n = self.n;
        let mut w = Search {
            pred: vec![0; n],
            d: vec![0.0; n],
            scan: Vec::with_capacity(n),
            done: Vec::with_capacity(n),
        };
        for &start in free {
            let sink = self.find_path(start, &mut w);
            // flip the path: each column on it takes its predecessor row
            let mut j = sink;
            loop {
                let i = w.pred[j];
                self.y[j] = i;
                std::mem::swap(&mut self.x[i], &mut j);
                if i == start {
                    break;
                }
            }
        }
    }

    /// Dijkstra from free row `start` over the columns: `d[j]` is the length of the shortest
    /// alternating path to column j in reduced costs c_ij − v_j − (c_{i,x_i} − v_{x_i}).
    /// Columns whose distance is final (scanned, or on the scan list at the current minimum)
    /// leave the todo set: their distance moves to `done` and `d[j]` becomes −∞, so the inner
    /// loop needs no set test and reads the cost row, `v` and `d` in column order (the cost
    /// matrix is far larger than the caches; gathers in permuted order stall on memory).
    /// Returns a free column at minimum distance and updates the potentials of the final
    /// columns.
    fn find_path(&mut self, start: usize, w: &mut Search) -> usize {
        let n = self.n;
        let Search {
            pred,
            d,
            scan,
            done,
        } = w;
        let row = &self.cost[start * n..(start + 1) * n];
        for j in 0..n {
            pred[j] = start;
            d[j] = row[j] - self.v[j];
        }
        scan.clear();
        done.clear();
        // columns finalised before the current minimum was reached
        let mut n_ready = 0usize;
        let mut mind = 0.0f64;
        let sink = 'search: loop {
            if scan.is_empty() {
                // every todo column at the smallest distance goes to the scan list
                n_ready = done.len();
                mind = f64::INFINITY;
                for &dj in d.iter() {
                    if dj != f64::NEG_INFINITY {
                        mind = mind.min(dj);
                    }
                }
                for (j, dj) in d.iter_mut().enumerate() {
                    if *dj == mind {
                        *dj = f64::NEG_INFINITY;
                        scan.push(j);
                        done.push((j, mind));
                    }
                }
                if let Some(&j) = scan.iter().find(|&&j| self.y[j] == NONE) {
                    break 'search j;
                }
            }
            // scan: relax the todo columns through the rows owning the scan columns
            while let Some(j0) = scan.pop() {
                let i = self.y[j0];
                let ri = &self.cost[i * n..(i + 1) * n];
                let h = ri[j0] - self.v[j0] - mind;
                for (j, ((&c, &vj), dj)) in ri.iter().zip(&self.v).zip(d.iter_mut()).enumerate() {
                    let red = c - vj - h;
                    // final columns hold −∞ and never pass this test
                    if red < *dj {
                        *dj = red;
                        pred[j] = i;
                        if red == mind {
                            if self.y[j] == NONE {
                                break 'search j;
                            }
                            *dj = f64::NEG_INFINITY;
                            scan.push(j);
                            done.push((j, mind));
                        }
                    }
                }
            }
        };
        // potentials of the columns finalised below the last minimum (the later ones sit at
        // the minimum and do not move)
        for &(j, dj) in &done[..n_ready] {
            self.v[j] += dj - mind;
        }
        sink
    }
}

/// Work arrays of one shortest-path search, reused across searches.
struct Search {
    pred: Vec<usize>,
    d: Vec<f64>,
    /// Columns at the current minimum distance, not yet scanned.
    scan: Vec<usize>,
    /// Columns whose distance is final, with that distance, in the order they became final.
    done: Vec<(usize, f64)>,
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
                certify(&cost, n, &a);
                let bf = brute_force(&cost, n);
                assert!((a.cost - bf).abs() < 1e-9, "n={n}: {} vs {bf}", a.cost);
            }
        }
    }

    /// Checks that `a` is a permutation with the stated cost and that its potentials are a dual
    /// certificate: u_i + v_j ≤ c_ij + tol everywhere, equality on the assignment.
    fn certify(cost: &[f64], n: usize, a: &Assignment) {
        let mut cols = a.col_of_row.clone();
        cols.sort_unstable();
        assert_eq!(cols, (0..n).collect::<Vec<_>>(), "not a permutation");
        let scale = cost.iter().fold(1.0f64, |m, c| m.max(c.abs()));
        let tol = 1e-9 * scale;
        let (u, v) = (&a.row_potential, &a.col_potential);
        for i in 0..n {
            for j in 0..n {
                let slack = cost[i * n + j] - u[i] - v[j];
                assert!(
                    slack >= -tol,
                    "n={n}: dual infeasible at ({i}, {j}): {slack}"
                );
            }
            let j = a.col_of_row[i];
            let slack = cost[i * n + j] - u[i] - v[j];
            assert!(slack.abs() <= tol, "n={n}: row {i} not tight: {slack}");
        }
        let direct: f64 = (0..n).map(|i| cost[i * n + a.col_of_row[i]]).sum();
        let dual: f64 = u.iter().chain(v).sum();
        assert!((a.cost - direct).abs() <= 1e-12 * direct.abs().max(1.0));
        assert!(
            (dual - direct).abs() <= tol * n as f64,
            "dual {dual} vs primal {direct}"
        );
    }

    fn euclidean(x: &[f64], y: &[f64], d: usize) -> Vec<f64> {
        let mut c = Vec::new();
        for a in x.chunks_exact(d) {
            for b in y.chunks_exact(d) {
                c.push(
                    a.iter()
                        .zip(b)
                        .map(|(p, q)| (p - q) * (p - q))
                        .sum::<f64>()
                        .sqrt(),
                );
            }
        }
        c
    }

    #[test]
    fn optimality_certificate_on_large_euclidean_instances() {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (n, d, shift) in [
            (300, 2, 0.0),
            (600, 32, 0.3),
            (1000, 8, 1.0),
            (1000, 64, 0.0),
        ] {
            let x: Vec<f64> = (0..n * d)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let y: Vec<f64> = (0..n * d)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    shift + z
                })
                .collect();
            let cost = euclidean(&x, &y, d);
            certify(&cost, n, &solve(&cost, n).unwrap());
        }
        // uniform random costs, and a matrix that makes every row prefer the same column
        let n = 500;
        let cost: Vec<f64> = (0..n * n).map(|_| rng.random_range(0.0..1.0)).collect();
        certify(&cost, n, &solve(&cost, n).unwrap());
        let cost: Vec<f64> = (0..n * n)
            .map(|k| ((k % n) as f64 - 3.0).abs() + 0.01 * (k / n) as f64)
            .collect();
        certify(&cost, n, &solve(&cost, n).unwrap());
    }

    #[test]
    fn ties_and_duplicate_points_give_an_optimal_permutation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // clouds drawn from 4 sites in the plane: every cost is one of a few values
        let sites = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 4.0]];
        for n in [5, 7, 200, 700] {
            let mut pick = |n: usize| -> Vec<f64> {
                (0..n).flat_map(|_| sites[rng.random_range(0..4)]).collect()
            };
            let (x, y) = (pick(n), pick(n));
            let cost = euclidean(&x, &y, 2);
            let a = solve(&cost, n).unwrap();
            certify(&cost, n, &a);
            if n <= 7 {
                assert!((a.cost - brute_force(&cost, n)).abs() < 1e-9);
            }
        }
        // all-equal and integer costs with many ties
        for n in [1, 2, 50, 400] {
            certify(&vec![2.5; n * n], n, &solve(&vec![2.5; n * n], n).unwrap());
            let cost: Vec<f64> = (0..n * n).map(|_| rng.random_range(0..3) as f64).collect();
            certify(&cost, n, &solve(&cost, n).unwrap());
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
