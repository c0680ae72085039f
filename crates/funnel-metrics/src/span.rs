//! Coordinates in the span of a pooled cloud.
//!
//! Layer representations are often rank-deficient: a linear layer wider than its input, dead
//! ReLU units, constant features. Density-based estimators (Gaussian and kNN KL) must work in
//! the subspace the points actually occupy, with its dimension r, not the ambient width. W1 is
//! unchanged by the projection (the discarded directions carry the same constant in every
//! point), and distances get cheaper.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::cloud::Points;

/// Row-major `n × d` matrix of f64 coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Coords {
    pub data: Vec<f64>,
    pub n: usize,
    pub d: usize,
}

impl Coords {
    pub fn new(data: Vec<f64>, n: usize, d: usize) -> Self {
        assert_eq!(data.len(), n * d, "coords: data length is not n·d");
        Self { data, n, d }
    }

    pub fn from_points(p: &Points) -> Self {
        Self::new(p.data.iter().map(|v| *v as f64).collect(), p.n, p.d)
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    pub fn select(&self, idx: &[usize]) -> Coords {
        let mut data = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Coords::new(data, idx.len(), self.d)
    }

    /// The first `r` columns (borrowed when that is all of them).
    pub fn truncate_columns(&self, r: usize) -> std::borrow::Cow<'_, Coords> {
        if r >= self.d {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut data = Vec::with_capacity(self.n * r);
        for i in 0..self.n {
            data.extend_from_slice(&self.row(i)[..r]);
        }
        std::borrow::Cow::Owned(Coords::new(data, self.n, r))
    }

    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.d];
        for i in 0..self.n {
            for (a, v) in m.iter_mut().zip(self.row(i)) {
                *a += v;
            }
        }
        let n = self.n.max(1) as f64;
        m.iter_mut().for_each(|a| *a /= n);
        m
    }

    /// Sample covariance with divisor `n − 1` (`n` when n = 1), accumulated over row blocks.
    pub fn covariance(&self) -> DMatrix<f64> {
        let m = self.mean();
        let mut cov = DMatrix::zeros(self.d, self.d);
        let mut start = 0;
        while start < self.n {
            let len = SPAN_BLOCK.min(self.n - start);
            let x = DMatrix::from_fn(len, self.d, |i, j| {
                self.data[(start + i) * self.d + j] - m[j]
            });
            cov += x.transpose() * &x;
            start += len;
        }
        let div = (self.n.max(2) - 1) as f64;
        cov / div
    }
}

/// Squared Euclidean distance in f64.
pub fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Principal axes of a pooled cloud, ordered by decreasing variance.
#[derive(Clone, Debug)]
pub struct Span {
    mean: Vec<f64>,
    /// `d × r`, columns are orthonormal principal directions.
    basis: DMatrix<f64>,
    /// Variances along the kept directions, decreasing.
    pub variances: Vec<f64>,
}

/// Directions with variance below this fraction of the largest are numerical noise (f32
/// activations carry ~1e-7 relative error, i.e. ~1e-14 in variance).
pub const RANK_TOLERANCE: f64 = 1e-9;

impl Span {
    /// The span of the union of `parts`: its mean and every principal direction whose variance
    /// exceeds `RANK_TOLERANCE` × the largest.
    ///
    /// The eigenproblem is solved in the smaller of the two sizes: on the d×d covariance when
    /// there are more points than dimensions, on the n×n Gram matrix of the centred points
    /// otherwise (a wide layer seen through few points), whose eigenvectors u give the principal
    /// directions Xᵀu/√λ.
    pub fn of(parts: &[&Coords]) -> Span {
        let d = parts.first().map_or(0, |p| p.d);
        let n: usize = parts.iter().map(|p| p.n).sum();
        let mut mean = vec![0.0; d];
        for p in parts {
            for i in 0..p.n {
                for (m, v) in mean.iter_mut().zip(p.row(i)) {
                    *m += v;
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        let div = (n.max(2) - 1) as f64;
        let dual = n < d;
        // centred rows `start..start + len` of one part as a `len × d` matrix
        let centred = |p: &Coords, start: usize, len: usize| {
            DMatrix::from_fn(len, d, |i, j| p.data[(start + i) * d + j] - mean[j])
        };
        let gram = if dual {
            // few points in many dimensions: the n × n Gram matrix (n < d keeps it small)
            let mut all = DMatrix::zeros(n, d);
            let mut row = 0;
            for p in parts {
                all.rows_mut(row, p.n).copy_from(&centred(p, 0, p.n));
                row += p.n;
            }
            &all * all.transpose() / div
        } else {
            // d × d covariance accumulated over row blocks: memory O(block·d + d²), no copy of
            // the pooled cloud (large layers have n·d in the hundreds of MB)
            let mut cov = DMatrix::zeros(d, d);
            for p in parts {
                let mut start = 0;
                while start < p.n {
                    let len = SPAN_BLOCK.min(p.n - start);
                    let x = centred(p, start, len);
                    cov += x.transpose() * &x;
                    start += len;
                }
            }
            cov / div
        };
        if gram.is_empty() {
            // no points or no dimensions: the span is empty (nalgebra's eigensolver panics on
            // a 0 × 0 matrix; found by `cargo fuzz run estimators`)
            return Span {
                mean,
                basis: DMatrix::zeros(d, 0),
                variances: Vec::new(),
            };
        }
        let eig = SymmetricEigen::new(gram);
        let size = eig.eigenvalues.len();
        let mut order: Vec<usize> = (0..size).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let top = order.first().map_or(0.0, |&i| eig.eigenvalues[i]).max(0.0);
        let kept: Vec<usize> = order
            .into_iter()
            .filter(|&i| top > 0.0 && eig.eigenvalues[i] > RANK_TOLERANCE * top)
            .collect();
        let variances: Vec<f64> = kept.iter().map(|&i| eig.eigenvalues[i]).collect();
        let basis = if dual {
            // v = Xᵀu / ‖Xᵀu‖, and ‖Xᵀu‖² = λ·(n−1) for a unit eigenvector u of XXᵀ/(n−1)
            let u = DMatrix::from_fn(n, kept.len(), |row, col| eig.eigenvectors[(row, kept[col])]);
            let mut v = DMatrix::zeros(d, kept.len());
            let mut row = 0;
            for p in parts {
                v += centred(p, 0, p.n).transpose() * u.rows(row, p.n);
                row += p.n;
            }
            for (col, lambda) in variances.iter().enumerate() {
                let norm = (lambda * div).sqrt();
                v.column_mut(col).unscale_mut(norm);
            }
            v
        } else {
            DMatrix::from_fn(d, kept.len(), |row, col| eig.eigenvectors[(row, kept[col])])
        };
        Span {
            mean,
            basis,
            variances,
        }
    }

    pub fn rank(&self) -> usize {
        self.basis.ncols()
    }

    /// Coordinates of `c` along the principal directions (centered at the pooled mean),
    /// computed in row blocks.
    pub fn project(&self, c: &Coords) -> Coords {
        let r = self.rank();
        let mut data = Vec::with_capacity(c.n * r);
        let mut start = 0;
        while start < c.n {
            let len = SPAN_BLOCK.min(c.n - start);
            let x = DMatrix::from_fn(len, c.d, |i, j| {
                c.data[(start + i) * c.d + j] - self.mean[j]
            });
            let y = x * &self.basis; // len × r
            for i in 0..len {
                data.extend(y.row(i).iter());
            }
            start += len;
        }
        Coords::new(data, c.n, r)
    }
}

/// Rows per block when accumulating covariances and projecting.
const SPAN_BLOCK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plane_in_three_dimensions_has_rank_two_and_keeps_distances() {
        // points on the plane z = x + y, shifted
        let pts: Vec<f64> = (0..30)
            .flat_map(|i| {
                let x = (i as f64 * 0.37).sin() * 3.0;
                let y = (i as f64 * 1.3).cos();
                [x + 1.0, y - 2.0, x + y + 5.0]
            })
            .collect();
        let c = Coords::new(pts, 30, 3);
        let span = Span::of(&[&c]);
        assert_eq!(span.rank(), 2);
        let p = span.project(&c);
        assert_eq!(p.d, 2);
        for (i, j) in [(0, 1), (3, 17), (5, 29)] {
            let a = sq_dist(c.row(i), c.row(j));
            let b = sq_dist(p.row(i), p.row(j));
            assert!((a - b).abs() < 1e-9 * a.max(1.0), "{a} vs {b}");
        }
        // centered
        assert!(p.mean().iter().all(|m| m.abs() < 1e-9));
    }

    #[test]
    fn few_points_in_many_dimensions_use_the_gram_matrix_and_keep_distances() {
        // 6 points in 40 dimensions: rank 5, through the n × n eigenproblem
        let pts: Vec<f64> = (0..6 * 40)
            .map(|i| ((i * 7919) % 101) as f64 / 17.0 - 3.0)
            .collect();
        let c = Coords::new(pts, 6, 40);
        let span = Span::of(&[&c]);
        assert_eq!(span.rank(), 5);
        let p = span.project(&c);
        for i in 0..6 {
            for j in 0..6 {
                let a = sq_dist(c.row(i), c.row(j));
                let b = sq_dist(p.row(i), p.row(j));
                assert!((a - b).abs() < 1e-9 * a.max(1.0), "{a} vs {b}");
            }
        }
        // the same variances as the d × d route
        let cov = c.covariance();
        let mut ev: Vec<f64> = cov.symmetric_eigenvalues().iter().copied().collect();
        ev.sort_by(|a, b| b.total_cmp(a));
        for (a, b) in span.variances.iter().zip(&ev) {
            assert!((a - b).abs() < 1e-9 * ev[0], "{a} vs {b}");
        }
    }

    #[test]
    fn identical_points_have_rank_zero() {
        let c = Coords::new(vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 3, 2);
        assert_eq!(Span::of(&[&c]).rank(), 0);
    }
}
