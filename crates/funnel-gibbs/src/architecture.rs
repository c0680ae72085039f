//! Architectures of a parameter budget with dropout (`[[gibbs.architecture]]`): the numbering of
//! their weight vectors and their loss table, the exact expectation of the 0-1 loss over the
//! dropout masks.
//!
//! The network dim → h_1 → … → h_L → 1 has no biases: T_0 = x, T_l = m_l ⊙ tanh(W_l T_{l−1}) with
//! a mask m_l ∈ {0, 1}^{h_l} whose entries are 0 (dropped) with probability p, independently,
//! kept units *not* rescaled by 1/(1−p), and f = vᵀ T_L; the prediction is class 1 if f > 0, 0
//! if f < 0, a coin flip (loss ½) if |f| ≤ [`TIE_TOLERANCE`](crate::TIE_TOLERANCE). The masks are
//! drawn afresh at every evaluation, in training and at test alike, so the loss of a weight
//! vector w on z is ℓ(w, z) = E_m ℓ_m(w, z) = Σ_m P(m)·ℓ_m(w, z), computed exactly by
//! enumerating the masks. A layer whose masked output is all zero makes every later layer zero
//! and f = 0, so with Πη = Π_l (1 − p^{h_l}) (the probability that no layer is dropped whole)
//! ℓ(w, z) = (1 − Πη)·½ + Πη·E[ℓ_m | no layer dropped whole] ∈ [(1 − Πη)/2, (1 + Πη)/2].

use std::thread;

use crate::enumeration::{loss_code, LossTable};
use crate::spec::Architecture;

/// The weight vector of configuration `index` of `arch` on inputs of dimension `dim`: θ_k =
/// `levels[(index / K^k) mod K]`, k = 0..P, laid out W_1 (h_1 × dim, row-major), W_2 (h_2 × h_1),
/// …, W_L, then the read-out v (h_L). For widths `[hidden]` this is the order of
/// [`config_weights`](crate::config_weights).
pub fn architecture_weights(
    index: usize,
    dim: usize,
    arch: &Architecture,
    levels: &[f64],
) -> Vec<f64> {
    let k = levels.len();
    assert!(k > 0, "architecture_weights: no levels");
    let mut rest = index;
    (0..arch.params(dim))
        .map(|_| {
            let d = rest % k;
            rest /= k;
            levels[d]
        })
        .collect()
}

/// The masks of one hidden layer of width h with drop probability p: (mask bits, probability)
/// for every mask of positive probability; bit j set = unit j kept. Probability
/// p^{dropped}·(1−p)^{kept}.
fn layer_masks(h: usize, p: f64) -> Vec<(u32, f64)> {
    (0..1u32 << h)
        .map(|m| {
            let kept = m.count_ones() as i32;
            (m, (1.0 - p).powi(kept) * p.powi(h as i32 - kept))
        })
        .filter(|&(_, q)| q > 0.0)
        .collect()
}

/// The dropout-expected loss, in units of ½ (Σ over mask paths of probability · code), of the
/// network with weights `theta` on point `x`, label `y`, from hidden layer `layer` on, given the
/// previous layer's (masked) activations `input`. A layer whose masked output is all zero makes
/// every later layer zero (no biases, tanh 0 = 0) and f = 0, a tie: that branch contributes its
/// probability · 1 without enumerating the later masks.
#[allow(clippy::too_many_arguments)]
fn expected_code(
    arch: &Architecture,
    masks: &[Vec<(u32, f64)>],
    theta: &[f64],
    offset: usize,
    layer: usize,
    input: &[f64],
    y: u8,
) -> f64 {
    if layer == arch.widths.len() {
        let mut f = 0.0;
        for (vj, a) in theta[offset..offset + input.len()].iter().zip(input) {
            f += vj * a;
        }
        return f64::from(loss_code(f, y));
    }
    let h = arch.widths[layer];
    let m = input.len();
    let mut act = [0.0f64; 64];
    for (j, a) in act.iter_mut().enumerate().take(h) {
        let w = &theta[offset + j * m..offset + (j + 1) * m];
        let pre: f64 = w.iter().zip(input).map(|(a, b)| a * b).sum();
        *a = pre.tanh();
    }
    let next = offset + h * m;
    let mut total = 0.0;
    let mut masked = [0.0f64; 64];
    for &(mask, q) in &masks[layer] {
        let mut alive = false;
        for j in 0..h {
            masked[j] = if mask >> j & 1 == 1 { act[j] } else { 0.0 };
            alive |= masked[j] != 0.0;
        }
        let code = if alive {
            expected_code(arch, masks, theta, next, layer + 1, &masked[..h], y)
        } else {
            1.0
        };
        total += q * code;
    }
    total
}

/// The loss table of architecture `arch` (see [`architecture_weights`] for the numbering) on
/// `points` (row-major, `dim` per point) and `labels`. Without dropout it holds the codes of the
/// deterministic network, computed in the order of [`loss_table`] (pre-activations summed over
/// inputs in order, f = Σ_j v_j·h_j in order), so for widths [hidden] the two tables are equal;
/// with dropout p > 0 it holds the exact expected 0-1 loss over the 2^units masks (each unit
/// dropped independently with probability p, kept units not rescaled).
///
/// # Panics
/// If a width exceeds 64 or the sizes overflow ([`GibbsSpec::validate`] keeps them small).
pub(crate) fn architecture_loss_table(
    dim: usize,
    arch: &Architecture,
    levels: &[f64],
    points: &[f64],
    labels: &[u8],
    threads: usize,
) -> LossTable {
    assert!(arch.widths.iter().all(|&h| (1..=64).contains(&h)));
    let k = levels.len();
    let params = arch.params(dim);
    let configs = k
        .checked_pow(params as u32)
        .expect("enumeration size overflows");
    let thetas: Vec<f64> = (0..configs)
        .flat_map(|c| architecture_weights(c, dim, arch, levels))
        .collect();
    let masks: Vec<Vec<(u32, f64)>> = arch
        .widths
        .iter()
        .map(|&h| layer_masks(h, arch.dropout))
        .collect();
    let real = arch.dropout > 0.0;
    let n_points = labels.len();
    let mut codes = vec![0u8; if real { 0 } else { n_points * configs }];
    let mut values = vec![0.0f64; if real { n_points * configs } else { 0 }];
    let eval = |p: usize, c: usize| -> f64 {
        let x = &points[p * dim..(p + 1) * dim];
        let theta = &thetas[c * params..(c + 1) * params];
        expected_code(arch, &masks, theta, 0, 0, x, labels[p])
    };
    let per_thread = n_points.div_ceil(threads.max(1)).max(1);
    thread::scope(|s| {
        if real {
            for (t, chunk) in values.chunks_mut(per_thread * configs).enumerate() {
                let eval = &eval;
                s.spawn(move || {
                    for (o, out) in chunk.chunks_mut(configs).enumerate() {
                        for (c, v) in out.iter_mut().enumerate() {
                            *v = 0.5 * eval(t * per_thread + o, c);
                        }
                    }
                });
            }
        } else {
            for (t, chunk) in codes.chunks_mut(per_thread * configs).enumerate() {
                let eval = &eval;
                s.spawn(move || {
                    for (o, out) in chunk.chunks_mut(configs).enumerate() {
                        for (c, v) in out.iter_mut().enumerate() {
                            *v = eval(t * per_thread + o, c) as u8;
                        }
                    }
                });
            }
        }
    });
    LossTable {
        configs,
        codes,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enumeration::{config_weights, draw_population, loss_table};
    use crate::spec::GibbsSpec;

    fn arch(widths: &[usize], dropout: f64) -> Architecture {
        Architecture {
            widths: widths.to_vec(),
            dropout,
        }
    }

    /// The 0-1 loss (0, ½, 1) of f on label y, written out independently of `loss_code`.
    fn zero_one(f: f64, y: u8) -> f64 {
        if f.abs() <= 1e-12 {
            0.5
        } else if (f > 0.0) == (y == 1) {
            0.0
        } else {
            1.0
        }
    }

    /// Brute force: every mask of all the units at once (2^units, bit u of `m` = unit u kept,
    /// units numbered layer by layer), a plain forward pass for each, weighted by
    /// p^dropped·(1−p)^kept. No pruning, no per-layer recursion.
    fn brute_force(dim: usize, a: &Architecture, theta: &[f64], x: &[f64], y: u8) -> f64 {
        assert_eq!(a.params(dim), theta.len());
        let units = a.units();
        let mut total = 0.0;
        for m in 0..1u32 << units {
            let kept = m.count_ones() as i32;
            let prob = (1.0 - a.dropout).powi(kept) * a.dropout.powi(units as i32 - kept);
            let mut t = x.to_vec();
            let (mut offset, mut unit) = (0, 0);
            for &h in &a.widths {
                let prev = t.len();
                let mut next = vec![0.0; h];
                for (j, nj) in next.iter_mut().enumerate() {
                    let pre: f64 = (0..prev).map(|i| theta[offset + j * prev + i] * t[i]).sum();
                    *nj = if m >> (unit + j) & 1 == 1 {
                        pre.tanh()
                    } else {
                        0.0
                    };
                }
                offset += h * prev;
                unit += h;
                t = next;
            }
            let f: f64 = t
                .iter()
                .enumerate()
                .map(|(j, tj)| theta[offset + j] * tj)
                .sum();
            total += prob * zero_one(f, y);
        }
        total
    }

    #[test]
    fn dropout_expected_loss_matches_a_hand_computation() {
        // dim 1, widths [2], p = 0.3, levels {−1, 1}; θ = (w_1, w_2, v_1, v_2) = (1, −1, 1, 1)
        // at x = 0.8, y = 1: tanh(0.8) = 0.664, tanh(−0.8) = −0.664.
        //   both kept (0.49):  f = 0.664 − 0.664 = 0 → tie, ½
        //   only unit 1 (0.21): f = 0.664 > 0 → correct, 0
        //   only unit 2 (0.21): f = −0.664 < 0 → wrong, 1
        //   none (0.09):        f = 0 → ½
        // E loss = 0.49·½ + 0.21·0 + 0.21·1 + 0.09·½ = 0.5.
        // θ = (1, 1, 1, −1): f = 0.664·(m_1 − m_2): E = 0.49·½ + 0.21·0 + 0.21·1 + 0.09·½ = 0.5;
        // θ = (1, 1, 1, 1): f = 0.664·(m_1 + m_2) > 0 unless none kept: E = 0.09·½ = 0.045;
        // at x = −0.8, y = 0 the sign flips with the label: 0.045 again.
        // θ = (1, −1, −1, 1) at x = 0.8, y = 1: f = −0.664·(m_1 + m_2) < 0 unless none kept:
        // wrong, E = 0.91 + 0.045 = 0.955.
        let a = arch(&[2], 0.3);
        let levels = [-1.0, 1.0];
        let index = |theta: [f64; 4]| -> usize {
            theta
                .iter()
                .rev()
                .fold(0, |acc, t| acc * 2 + usize::from(*t == 1.0))
        };
        let points = [0.8, -0.8];
        let labels = [1u8, 0];
        let table = architecture_loss_table(1, &a, &levels, &points, &labels, 2);
        assert_eq!(table.configs, 16);
        assert!(table.is_real());
        for (theta, point, expected) in [
            ([1.0, -1.0, 1.0, 1.0], 0, 0.5),
            ([1.0, 1.0, 1.0, -1.0], 0, 0.5),
            ([1.0, 1.0, 1.0, 1.0], 0, 0.045),
            ([1.0, 1.0, 1.0, 1.0], 1, 0.045),
            ([1.0, -1.0, -1.0, 1.0], 0, 1.0 - 0.045),
        ] {
            let i = index(theta);
            assert_eq!(architecture_weights(i, 1, &a, &levels), theta.to_vec());
            let got = table.value_row(point)[i];
            assert!(
                (got - expected).abs() < 1e-15,
                "θ = {theta:?}: {got} vs {expected}"
            );
        }
        // θ = (1, −1, −1, 1) at x = −0.8, y = 0: f = −tanh(−0.8)·m_1 + tanh(0.8)·m_2 ≥ 0:
        // wrong unless none kept, so E = 0.91 + 0.09·½ = 0.955.
        let got = table.value_row(1)[index([1.0, -1.0, -1.0, 1.0])];
        assert!((got - 0.955).abs() < 1e-15, "{got}");
        // A scalar chain [1, 1] with p = 0.25: E = (1−p)²·ℓ_full + (1 − (1−p)²)·½.
        let a = arch(&[1, 1], 0.25);
        let table = architecture_loss_table(1, &a, &levels, &[0.5], &[1], 1);
        for c in 0..table.configs {
            let theta = architecture_weights(c, 1, &a, &levels);
            let f = theta[2] * (theta[1] * (theta[0] * 0.5f64).tanh()).tanh();
            let expected = 0.5625 * zero_one(f, 1) + 0.4375 * 0.5;
            assert!(
                (table.value_row(0)[c] - expected).abs() < 1e-15,
                "{theta:?}"
            );
        }
    }

    #[test]
    fn dropout_expected_loss_matches_brute_force_over_all_masks() {
        let spec = GibbsSpec {
            dim: 2,
            pool: 30,
            ..GibbsSpec::default()
        };
        let pop = draw_population(&spec);
        let levels = [-1.0, 0.5, 2.0];
        for a in [
            arch(&[3], 0.5),
            arch(&[1, 3, 1], 0.2),
            arch(&[2, 1, 1, 1], 0.7),
            arch(&[1, 1, 1, 1, 1, 1, 1], 0.5),
            arch(&[2, 2], 0.35),
        ] {
            let table = architecture_loss_table(2, &a, &levels, &pop.points, &pop.labels, 2);
            let eta = a.eta_product();
            // Every 97th configuration on every point.
            for c in (0..table.configs).step_by(97) {
                let theta = architecture_weights(c, 2, &a, &levels);
                for p in 0..spec.pool {
                    let x = &pop.points[2 * p..2 * p + 2];
                    let want = brute_force(2, &a, &theta, x, pop.labels[p]);
                    let got = table.value_row(p)[c];
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{a:?} θ {theta:?}: {got} vs {want}"
                    );
                }
            }
            // The floor: every expected loss lies in [(1 − Πη)/2, (1 + Πη)/2].
            let (lo, hi) = ((1.0 - eta) / 2.0, (1.0 + eta) / 2.0);
            assert!(
                table
                    .values
                    .iter()
                    .all(|&v| v >= lo - 1e-12 && v <= hi + 1e-12),
                "{a:?}"
            );
        }
    }

    #[test]
    fn without_dropout_the_table_is_the_single_network_table_bit_for_bit() {
        for hidden in [1, 2, 3] {
            let spec = GibbsSpec {
                hidden: Some(hidden),
                pool: 300,
                ..GibbsSpec::default()
            };
            let pop = draw_population(&spec);
            let legacy = loss_table(&spec, &pop.points, &pop.labels, 2);
            let a = arch(&[hidden], 0.0);
            let table = architecture_loss_table(2, &a, &spec.levels, &pop.points, &pop.labels, 3);
            assert!(!table.is_real());
            assert_eq!(table.configs, legacy.configs);
            assert!(table.codes == legacy.codes, "hidden {hidden}");
            for c in (0..table.configs).step_by(13) {
                assert_eq!(
                    architecture_weights(c, 2, &a, &spec.levels),
                    config_weights(c, &spec)
                );
            }
        }
        // A deeper network without dropout: codes, and equal to the brute force at p = 0.
        let a = arch(&[2, 1, 1, 1], 0.0);
        let levels = [-1.0, 0.0, 1.0];
        let spec = GibbsSpec {
            pool: 20,
            ..GibbsSpec::default()
        };
        let pop = draw_population(&spec);
        let table = architecture_loss_table(2, &a, &levels, &pop.points, &pop.labels, 2);
        assert!(!table.is_real());
        for c in (0..table.configs).step_by(31) {
            let theta = architecture_weights(c, 2, &a, &levels);
            for p in 0..spec.pool {
                let want = brute_force(2, &a, &theta, &pop.points[2 * p..2 * p + 2], pop.labels[p]);
                assert_eq!(f64::from(table.codes[p * table.configs + c]) / 2.0, want);
            }
        }
    }

    #[test]
    fn eta_product_is_the_closed_form() {
        // Equal widths d over L layers: (1 − p^d)^L.
        for (d, l, p) in [
            (4, 2, 0.5),
            (1, 7, 0.5),
            (3, 1, 0.1),
            (2, 4, 0.3),
            (5, 3, 0.0),
        ] {
            let a = arch(&vec![d; l], p);
            let closed = (1.0 - f64::powi(p, d as i32)).powi(l as i32);
            assert!((a.eta_product() - closed).abs() < 1e-15, "{a:?}");
        }
        // DESIGN §2.6's fixed neuron budget N = 8, p = 0.5: 0.996, 0.879, 0.316, 0.0039.
        for (l, want) in [(1, 0.996), (2, 0.879), (4, 0.316), (8, 0.0039)] {
            let a = arch(&vec![8 / l; l], 0.5);
            assert!(
                (a.eta_product() - want).abs() < 5e-4,
                "L = {l}: {}",
                a.eta_product()
            );
        }
        // Unequal widths: the product.
        let a = arch(&[2, 1, 1, 1], 0.5);
        assert_eq!(a.eta_product(), 0.75 * 0.5 * 0.5 * 0.5);
        assert_eq!(arch(&[1, 3, 1], 0.5).eta_product(), 0.5 * 0.875 * 0.5);
        // The budget P = dim·h_1 + Σ h_(l−1)·h_l + h_L.
        for w in [&[3][..], &[1, 3, 1], &[2, 1, 1, 1], &[1; 7]] {
            assert_eq!(arch(w, 0.5).params(2), 9, "{w:?}");
        }
        assert_eq!(arch(&[4, 4], 0.5).params(3), 12 + 16 + 4);
    }
}
