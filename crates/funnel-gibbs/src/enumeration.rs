//! The finite weight set and the population: the mixed-radix numbering of configurations, the
//! pool drawn from the mixture, and the loss table of every configuration on every pool point.

use std::thread;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::spec::{GibbsSpec, TIE_TOLERANCE};

/// The weight vector θ = (W row-major, then v) of configuration `index`:
/// θ_k = `levels[(index / K^k) mod K]`, k = 0..P, so `W[j][i]` = θ_{j·dim + i} and
/// v_j = θ_{hidden·dim + j}. Index 0 is every weight at `levels[0]`.
///
/// # Panics
/// If `spec.levels` is empty.
pub fn config_weights(index: usize, spec: &GibbsSpec) -> Vec<f64> {
    let k = spec.levels.len();
    assert!(k > 0, "config_weights: no levels");
    let mut rest = index;
    (0..spec.params())
        .map(|_| {
            let d = rest % k;
            rest /= k;
            spec.levels[d]
        })
        .collect()
}

/// Sizes of the enumeration.
#[derive(Clone, Copy, Debug)]
struct Layout {
    k: usize,
    dim: usize,
    hidden: usize,
    /// K^dim: the possible rows w_j of W.
    rows: usize,
    /// K^{dim·hidden}: the possible matrices W.
    matrices: usize,
    /// K^hidden: the possible v.
    outputs: usize,
    /// K^P = matrices · outputs.
    configs: usize,
}

impl Layout {
    /// Panics on overflow; [`GibbsSpec::validate`] keeps the sizes small.
    fn new(spec: &GibbsSpec) -> Layout {
        let k = spec.levels.len();
        let pow = |e: usize| k.checked_pow(e as u32).expect("enumeration size overflows");
        let rows = pow(spec.dim);
        let matrices = pow(spec.dim * spec.hidden());
        let outputs = pow(spec.hidden());
        Layout {
            k,
            dim: spec.dim,
            hidden: spec.hidden(),
            rows,
            matrices,
            outputs,
            configs: matrices * outputs,
        }
    }
}

/// The pool: `labels.len()` points, row-major in `points`.
pub(crate) struct Population {
    pub(crate) points: Vec<f64>,
    pub(crate) labels: Vec<u8>,
}

/// Draws the pool from the binary Gaussian mixture (ChaCha8 seeded with `spec.seed`).
pub(crate) fn draw_population(spec: &GibbsSpec) -> Population {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mu = spec.mean_norm / (spec.dim as f64).sqrt();
    let mut points = Vec::with_capacity(spec.pool * spec.dim);
    let mut labels = Vec::with_capacity(spec.pool);
    for _ in 0..spec.pool {
        let y: u8 = rng.random_range(0..2);
        let sign = if y == 1 { 1.0 } else { -1.0 };
        for _ in 0..spec.dim {
            let z: f64 = StandardNormal.sample(&mut rng);
            points.push(sign * mu + spec.noise_std * z);
        }
        labels.push(y);
    }
    Population { points, labels }
}

/// The loss of a network output `f` on label `y`, in units of ½: 0 correct, 1 tie, 2 wrong.
pub(crate) fn loss_code(f: f64, y: u8) -> u8 {
    if f.abs() <= TIE_TOLERANCE {
        1
    } else if (f > 0.0) == (y == 1) {
        0
    } else {
        2
    }
}

/// The loss of every configuration on every point, laid out `[point][configuration]`: either
/// codes (0, 1, 2 = loss 0, ½, 1), or, for a network with dropout, the exact expectation of the
/// loss over the dropout masks as an f64 (`values`). Exactly one of the two is non-empty.
pub(crate) struct LossTable {
    pub(crate) configs: usize,
    pub(crate) codes: Vec<u8>,
    pub(crate) values: Vec<f64>,
}

impl LossTable {
    pub(crate) fn points(&self) -> usize {
        if self.values.is_empty() {
            self.codes.len() / self.configs
        } else {
            self.values.len() / self.configs
        }
    }

    /// Whether the table holds f64 expected losses (dropout) rather than codes.
    pub(crate) fn is_real(&self) -> bool {
        !self.values.is_empty()
    }

    pub(crate) fn value_row(&self, point: usize) -> &[f64] {
        &self.values[point * self.configs..(point + 1) * self.configs]
    }

    pub(crate) fn row(&self, point: usize) -> &[u8] {
        &self.codes[point * self.configs..(point + 1) * self.configs]
    }

    /// R(w), the mean loss over all points, for every configuration.
    pub(crate) fn risk(&self) -> Vec<f64> {
        if self.is_real() {
            let mut sums = vec![0.0; self.configs];
            for p in 0..self.points() {
                for (s, &v) in sums.iter_mut().zip(self.value_row(p)) {
                    *s += v;
                }
            }
            let m = self.points() as f64;
            return sums.iter().map(|&s| s / m).collect();
        }
        let mut sums = vec![0u64; self.configs];
        for p in 0..self.points() {
            for (s, &c) in sums.iter_mut().zip(self.row(p)) {
                *s += u64::from(c);
            }
        }
        let scale = 0.5 / self.points() as f64;
        sums.iter().map(|&s| s as f64 * scale).collect()
    }
}

/// Builds the loss table of `points` (row-major, `spec.dim` per point) and `labels`.
///
/// For each point, tanh(w·x) is computed once for each of the K^dim possible rows w; then
/// f = Σ_j v_j · tanh(w_jᵀx) (summed in order j = 0, 1, …) for every configuration, stored at its
/// mixed-radix index a + K^{dim·hidden}·b, where a = Σ_j r_j·(K^dim)^j encodes the rows
/// r_j = Σ_i d_{j·dim+i} K^i of W and b = Σ_j e_j K^j the digits of v (as in [`config_weights`]).
pub(crate) fn loss_table(
    spec: &GibbsSpec,
    points: &[f64],
    labels: &[u8],
    threads: usize,
) -> LossTable {
    let lay = Layout::new(spec);
    let levels = &spec.levels;
    // Row r of W: weights levels[(r / K^i) mod K], i = 0..dim.
    let row_weights: Vec<f64> = (0..lay.rows)
        .flat_map(|r| (0..lay.dim).map(move |i| levels[(r / lay.k.pow(i as u32)) % lay.k]))
        .collect();
    // Matrix a: row indices (a / (K^dim)^j) mod K^dim, j = 0..hidden.
    let matrix_rows: Vec<usize> = (0..lay.matrices)
        .flat_map(|a| (0..lay.hidden).map(move |j| (a / lay.rows.pow(j as u32)) % lay.rows))
        .collect();
    // Output weights b: v_j = levels[(b / K^j) mod K].
    let output_weights: Vec<f64> = (0..lay.outputs)
        .flat_map(|b| (0..lay.hidden).map(move |j| levels[(b / lay.k.pow(j as u32)) % lay.k]))
        .collect();

    let n_points = labels.len();
    let mut codes = vec![0u8; n_points * lay.configs];
    let fill = |first: usize, chunk: &mut [u8]| {
        let mut h = vec![0.0; lay.rows];
        for (offset, out) in chunk.chunks_mut(lay.configs).enumerate() {
            let p = first + offset;
            let x = &points[p * lay.dim..(p + 1) * lay.dim];
            for (r, hr) in h.iter_mut().enumerate() {
                let w = &row_weights[r * lay.dim..(r + 1) * lay.dim];
                let pre: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum();
                *hr = pre.tanh();
            }
            for b in 0..lay.outputs {
                let v = &output_weights[b * lay.hidden..(b + 1) * lay.hidden];
                let block = &mut out[b * lay.matrices..(b + 1) * lay.matrices];
                for (a, code) in block.iter_mut().enumerate() {
                    let rows = &matrix_rows[a * lay.hidden..(a + 1) * lay.hidden];
                    let mut f = 0.0;
                    for (vj, &r) in v.iter().zip(rows) {
                        f += vj * h[r];
                    }
                    *code = loss_code(f, labels[p]);
                }
            }
        }
    };
    let per_thread = n_points.div_ceil(threads.max(1)).max(1);
    thread::scope(|s| {
        for (t, chunk) in codes.chunks_mut(per_thread * lay.configs).enumerate() {
            let fill = &fill;
            s.spawn(move || fill(t * per_thread, chunk));
        }
    });
    LossTable {
        configs: lay.configs,
        codes,
        values: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The index of the configuration with weight vector `theta`, from the documented order.
    fn index_of(theta: &[f64], levels: &[f64]) -> usize {
        let k = levels.len();
        theta.iter().rev().fold(0, |acc, t| {
            acc * k + levels.iter().position(|l| l == t).expect("a level")
        })
    }

    #[test]
    fn enumeration_visits_every_weight_vector_once() {
        let spec = GibbsSpec {
            hidden: Some(1),
            dim: 2,
            levels: vec![-1.0, 0.0, 1.0],
            ..GibbsSpec::default()
        };
        assert_eq!(spec.params(), 3);
        let lay = Layout::new(&spec);
        assert_eq!(lay.configs, 27);
        let mut seen = HashSet::new();
        for i in 0..lay.configs {
            let theta = config_weights(i, &spec);
            assert_eq!(theta.len(), 3);
            assert!(theta.iter().all(|t| spec.levels.contains(t)));
            assert_eq!(index_of(&theta, &spec.levels), i, "θ = {theta:?}");
            seen.insert(theta.iter().map(|t| t.to_bits()).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 27);
        // The documented order: θ_0 = W[0][0] is the least significant digit.
        assert_eq!(config_weights(0, &spec), vec![-1.0, -1.0, -1.0]);
        assert_eq!(config_weights(1, &spec), vec![0.0, -1.0, -1.0]);
        assert_eq!(config_weights(3, &spec), vec![-1.0, 0.0, -1.0]);
        assert_eq!(config_weights(9, &spec), vec![-1.0, -1.0, 0.0]);
        assert_eq!(config_weights(26, &spec), vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn loss_table_matches_hand_computation() {
        let spec = GibbsSpec {
            hidden: Some(2),
            dim: 2,
            levels: vec![-1.0, 0.0, 1.0],
            ..GibbsSpec::default()
        };
        let points = [0.3, 0.5, 0.3, 0.5, -0.2, 0.7, 2.5, -3.0];
        let labels = [0u8, 1, 1, 0];
        let table = loss_table(&spec, &points, &labels, 2);
        assert_eq!(table.configs, 729);
        let tanh = |a: f64| ((2.0 * a).exp() - 1.0) / ((2.0 * a).exp() + 1.0);
        // θ = (W[0][0], W[0][1], W[1][0], W[1][1], v_0, v_1), and the expected losses on the
        // three points, worked out by hand:
        // Points (0.3, 0.5) class 0, (0.3, 0.5) class 1, (−0.2, 0.7) class 1, (2.5, −3) class 0.
        // 1. W = [[1,0],[0,−1]], v = (1,1): f(0.3,0.5) = tanh 0.3 − tanh 0.5 = 0.291 − 0.462 < 0,
        //    f(−0.2,0.7) = tanh(−0.2) − tanh 0.7 < 0, f(2.5,−3) = tanh 2.5 + tanh 3 > 0.
        // 2. v = 0: ties everywhere.
        // 3. W = [[1,1],[1,1]], v = (1,−1): the units cancel exactly, ties.
        // 4. W = [[1,−1],[0,1]], v = (−1,1): f(0.3,0.5) = −tanh(−0.2) + tanh 0.5 > 0,
        //    f(−0.2,0.7) = −tanh(−0.9) + tanh 0.7 > 0, f(2.5,−3) = −tanh 5.5 + tanh(−3) < 0.
        // 5. W = [[0,1],[1,0]], v = (1,1): f(0.3,0.5) = tanh 0.5 + tanh 0.3 > 0,
        //    f(−0.2,0.7) = tanh 0.7 + tanh(−0.2) = 0.604 − 0.197 > 0,
        //    f(2.5,−3) = tanh(−3) + tanh 2.5 = −0.99505 + 0.98661 < 0 (saturated tanh).
        let cases: [([f64; 6], [f64; 4]); 5] = [
            ([1.0, 0.0, 0.0, -1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]),
            ([1.0, -1.0, 0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]),
            ([1.0, 1.0, 1.0, 1.0, 1.0, -1.0], [0.5, 0.5, 0.5, 0.5]),
            ([1.0, -1.0, 0.0, 1.0, -1.0, 1.0], [1.0, 0.0, 0.0, 0.0]),
            ([0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]),
        ];
        for (theta, expected) in cases {
            let idx = index_of(&theta, &spec.levels);
            assert_eq!(config_weights(idx, &spec), theta.to_vec());
            for p in 0..4 {
                let x = &points[2 * p..2 * p + 2];
                // The hand computation of f, checked against the table's sign.
                let f = theta[4] * tanh(theta[0] * x[0] + theta[1] * x[1])
                    + theta[5] * tanh(theta[2] * x[0] + theta[3] * x[1]);
                let from_f = if f.abs() < 1e-9 {
                    0.5
                } else if (f > 0.0) == (labels[p] == 1) {
                    0.0
                } else {
                    1.0
                };
                assert_eq!(from_f, expected[p], "hand check, θ = {theta:?}, point {p}");
                let code = table.codes[p * table.configs + idx];
                assert_eq!(
                    f64::from(code) / 2.0,
                    expected[p],
                    "θ = {theta:?}, point {p}"
                );
            }
        }
        // R(w) is the mean over the points.
        let risk = table.risk();
        let idx = index_of(&cases[0].0, &spec.levels);
        assert!((risk[idx] - 3.0 / 4.0).abs() < 1e-15);
    }

    #[test]
    fn population_follows_the_mixture() {
        let spec = GibbsSpec {
            dim: 4,
            pool: 40_000,
            mean_norm: 2.0,
            noise_std: 0.5,
            ..GibbsSpec::default()
        };
        let pop = draw_population(&spec);
        let m = spec.pool as f64;
        let ones = pop.labels.iter().filter(|&&y| y == 1).count() as f64;
        assert!((ones / m - 0.5).abs() <= 4.0 * (0.25 / m).sqrt(), "{ones}");
        // Class means ±‖μ‖/√dim = ±1 in every coordinate, noise sd 0.5.
        for (class, sign) in [(0u8, -1.0), (1, 1.0)] {
            let xs: Vec<&[f64]> = pop
                .points
                .chunks(spec.dim)
                .zip(&pop.labels)
                .filter(|(_, &y)| y == class)
                .map(|(x, _)| x)
                .collect();
            let k = xs.len() as f64;
            for i in 0..spec.dim {
                let mean = xs.iter().map(|x| x[i]).sum::<f64>() / k;
                assert!((mean - sign).abs() <= 4.0 * 0.5 / k.sqrt(), "{mean}");
                let var = xs.iter().map(|x| (x[i] - mean).powi(2)).sum::<f64>() / (k - 1.0);
                // sd of a sample variance ≈ σ²·sqrt(2/k).
                assert!((var - 0.25).abs() <= 4.0 * 0.25 * (2.0 / k).sqrt(), "{var}");
            }
        }
    }
}
