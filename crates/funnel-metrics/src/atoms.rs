//! KL between layer clouds that are not densities: dropout, DropConnect and ReLU put *atoms*
//! (exact duplicates such as the all-zero vector) and *zero patterns* (points on a coordinate
//! face: some units exactly 0) into a layer, where the plain kNN estimator's density assumption
//! fails (it refuses clouds with many duplicates, and mixes dimensions on faces).
//!
//! The estimator splits every point into a category: an atom (a row that occurs more than once
//! in P ∪ Q), or else the set of its coordinates that are exactly 0. The category is a function
//! of the point, so the chain rule is exact:
//!
//! ```text
//! D(P‖Q) = D(P_M‖Q_M) + Σ_m P(m)·D(P_{·|m} ‖ Q_{·|m})
//! ```
//!
//! The first term is the KL between the category frequencies (add-½ smoothed, so a category
//! that one side lacks gives a finite number; the bias is O(categories/n) and shows in the
//! null baseline). The second uses the kNN estimator on the non-zero coordinates of each zero
//! pattern (in their span); atoms have no continuous part. Categories with fewer than k + 1
//! points on a side cannot be estimated: their conditional term is left out (counted as 0,
//! which biases the estimate down by at most their share times their KL), and when they hold
//! more than [`MAX_RARE_SHARE`] of P the estimator refuses.

use std::collections::HashMap;

use burn::prelude::Device;

use crate::kl::{knn, KlValue};
use crate::span::{Coords, Span};
use crate::EstimateError;

/// Largest share of P in categories too small for kNN that the estimator accepts.
pub const MAX_RARE_SHARE: f64 = 0.2;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Category {
    /// An exact duplicate value (its f64 bits).
    Atom(Vec<u64>),
    /// The coordinates that are exactly 0, as a bit set.
    Zeros(Vec<u64>),
}

fn bits(row: &[f64]) -> Vec<u64> {
    row.iter().map(|v| v.to_bits()).collect()
}

fn zero_mask(row: &[f64]) -> Vec<u64> {
    let mut mask = vec![0u64; row.len().div_ceil(64).max(1)];
    for (j, v) in row.iter().enumerate() {
        if *v == 0.0 {
            mask[j / 64] |= 1 << (j % 64);
        }
    }
    mask
}

fn is_zero(mask: &[u64], j: usize) -> bool {
    mask[j / 64] & (1 << (j % 64)) != 0
}

/// The category of every row of `p` and `q`.
fn categories(p: &Coords, q: &Coords) -> (Vec<Category>, Vec<Category>) {
    let mut seen: HashMap<Vec<u64>, usize> = HashMap::new();
    for c in [p, q] {
        for i in 0..c.n {
            *seen.entry(bits(c.row(i))).or_default() += 1;
        }
    }
    let of = |c: &Coords| -> Vec<Category> {
        (0..c.n)
            .map(|i| {
                let row = c.row(i);
                let b = bits(row);
                if seen[&b] > 1 {
                    Category::Atom(b)
                } else {
                    Category::Zeros(zero_mask(row))
                }
            })
            .collect()
    };
    (of(p), of(q))
}

/// The non-zero coordinates (`mask` clear) of the rows `idx` of `c`.
fn kept(c: &Coords, idx: &[usize], mask: &[u64]) -> Coords {
    let cols: Vec<usize> = (0..c.d).filter(|&j| !is_zero(mask, j)).collect();
    let mut data = Vec::with_capacity(idx.len() * cols.len());
    for &i in idx {
        let row = c.row(i);
        data.extend(cols.iter().map(|&j| row[j]));
    }
    Coords::new(data, idx.len(), cols.len())
}

/// The chain-rule estimate described in the module docs, with kNN of order `k` inside each
/// zero pattern.
pub fn knn_atoms(
    p: &Coords,
    q: &Coords,
    k: usize,
    device: &Device,
) -> Result<KlValue, EstimateError> {
    if p.n == 0 || q.n == 0 {
        return Err(EstimateError::TooFewPoints {
            estimator: "knn_atoms KL",
            have: p.n.min(q.n),
            need: k + 1,
        });
    }
    let (cp, cq) = categories(p, q);
    // category → (rows of p, rows of q), in order of first appearance (deterministic)
    let mut order: Vec<Category> = Vec::new();
    let mut groups: HashMap<Category, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (side, cats) in [(0, &cp), (1, &cq)] {
        for (i, c) in cats.iter().enumerate() {
            let g = groups.entry(c.clone()).or_insert_with(|| {
                order.push(c.clone());
                (Vec::new(), Vec::new())
            });
            if side == 0 {
                g.0.push(i);
            } else {
                g.1.push(i);
            }
        }
    }
    let (np, nq) = (p.n as f64, q.n as f64);
    let m = order.len() as f64;
    // KL between the add-½ smoothed category frequencies
    let mut kl_cat = 0.0;
    for c in &order {
        let (ip, iq) = &groups[c];
        let a = (ip.len() as f64 + 0.5) / (np + 0.5 * m);
        let b = (iq.len() as f64 + 0.5) / (nq + 0.5 * m);
        kl_cat += a * (a / b).ln();
    }
    let mut value = kl_cat.max(0.0);
    let (mut dims, mut ties, mut rare) = (0usize, 0usize, 0.0f64);
    for c in &order {
        let Category::Zeros(mask) = c else {
            continue; // an atom has no continuous part
        };
        let (ip, iq) = &groups[c];
        if ip.is_empty() {
            continue;
        }
        let share = ip.len() as f64 / np;
        if ip.len() < k + 1 || iq.len() < k {
            rare += share;
            continue;
        }
        let (pm, qm) = (kept(p, ip, mask), kept(q, iq, mask));
        if pm.d == 0 {
            continue;
        }
        let span = Span::of(&[&pm, &qm]);
        let v = knn(&span.project(&pm), &span.project(&qm), k, device)?;
        value += share * v.value;
        dims = dims.max(v.dims);
        ties += v.ties;
    }
    if rare > MAX_RARE_SHARE {
        return Err(EstimateError::Degenerate(format!(
            "{:.0}% of the points fall in zero patterns with fewer than k + 1 = {} points on a side; \
             knn_atoms needs fewer distinct patterns (narrower layers) or more points",
            100.0 * rare,
            k + 1
        )));
    }
    Ok(KlValue { value, dims, ties })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn device() -> Device {
        Device::flex()
    }

    /// n draws: with probability `atom` the all-zero vector, else N(mean, I) in 2-d with each
    /// coordinate zeroed independently with probability `drop` (a dropout mask).
    fn draw(n: usize, atom: f64, drop: f64, mean: [f64; 2], rng: &mut ChaCha8Rng) -> Coords {
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            if rng.random::<f64>() < atom {
                data.extend([0.0, 0.0]);
                continue;
            }
            for m in mean {
                let z: f64 = StandardNormal.sample(rng);
                data.push(if rng.random::<f64>() < drop {
                    0.0
                } else {
                    m + z
                });
            }
        }
        Coords::new(data, n, 2)
    }

    /// Atom + Gaussian: D = KL(Bernoulli) + (1 − a_p)·‖Δ‖²/2, computed by hand.
    #[test]
    fn an_atom_beside_a_gaussian_matches_the_chain_rule() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (ap, aq) = (0.3, 0.5);
        let p = draw(6000, ap, 0.0, [0.0, 0.0], &mut rng);
        let q = draw(6000, aq, 0.0, [1.0, 0.0], &mut rng);
        let want =
            ap * (ap / aq).ln() + (1.0 - ap) * ((1.0 - ap) / (1.0 - aq)).ln() + (1.0 - ap) * 0.5;
        let got = knn_atoms(&p, &q, 5, &device()).unwrap().value;
        assert!((got - want).abs() < 0.08 * want, "{got} vs {want}");
        // the plain kNN estimator refuses this cloud (its atom)
        assert!(knn(&p, &q, 5, &device()).is_err());
    }

    /// A dropout mask on each coordinate: the pattern law is the same on both sides, and each
    /// pattern keeps the marginal of the kept coordinates, so
    /// D = Σ_m P(m)·‖Δ_kept(m)‖²/2 = (1 − r)²·(δ1² + δ2²)/2 + r(1 − r)·(δ1² + δ2²)/2, r = drop.
    #[test]
    fn dropout_patterns_match_the_chain_rule() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let r = 0.3;
        let p = draw(8000, 0.0, r, [0.0, 0.0], &mut rng);
        let q = draw(8000, 0.0, r, [1.0, 0.5], &mut rng);
        let d2 = 1.0 + 0.25;
        let want = (1.0 - r) * (1.0 - r) * d2 / 2.0 + r * (1.0 - r) * d2 / 2.0;
        let got = knn_atoms(&p, &q, 5, &device()).unwrap().value;
        assert!((got - want).abs() < 0.1 * want, "{got} vs {want}");
    }

    /// Identical laws give ≈ 0; a refused cloud (too many rare patterns) is an error, not a
    /// number.
    #[test]
    fn same_law_is_near_zero_and_rare_patterns_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = draw(4000, 0.2, 0.3, [0.5, 0.5], &mut rng);
        let q = draw(4000, 0.2, 0.3, [0.5, 0.5], &mut rng);
        let v = knn_atoms(&p, &q, 5, &device()).unwrap().value;
        assert!(v.abs() < 0.03, "{v}");
        // unequal sizes (a training cloud against a larger test cloud)
        let small = draw(500, 0.2, 0.3, [0.5, 0.5], &mut rng);
        let v = knn_atoms(&small, &q, 5, &device()).unwrap().value;
        eprintln!("same law, 500 vs 4000: {v}");
        assert!(v.abs() < 0.06, "{v}");
        // 40 points in 10 dimensions, each coordinate dropped with probability ½: every
        // pattern is (nearly) unique
        let mut data = Vec::new();
        for _ in 0..40 * 10 {
            let z: f64 = StandardNormal.sample(&mut rng);
            data.push(if rng.random::<f64>() < 0.5 { 0.0 } else { z });
        }
        let (a, b) = data.split_at(200);
        let e = knn_atoms(
            &Coords::new(a.to_vec(), 20, 10),
            &Coords::new(b.to_vec(), 20, 10),
            5,
            &device(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("zero patterns"), "{e}");
    }
}
