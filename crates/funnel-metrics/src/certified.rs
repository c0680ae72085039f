//! Certified Lipschitz constants tighter than the product of norms (DESIGN §2.4), computed on
//! the host in f64:
//!
//! * **Combettes–Pesquet (CP)** (Combettes & Pesquet 2020, "Lipschitz certificates for layered
//!   network structures driven by averaged activation operators", SIAM J. Math. Data Sci. 2020,
//!   arXiv 1903.01014; their bound for ½-averaged activations, derived again here — not their
//!   sharper refinement for separable activations): for T = W_m ∘ R_{m−1} ∘ ⋯ ∘ R_1 ∘ W_1 with
//!   every R_k firmly nonexpansive (½-averaged: R = (I + N)/2 with N nonexpansive),
//!
//!   Lip(T) ≤ θ_m / 2^{m−1},  θ_m = Σ_{k=0}^{m−1} Σ_{1≤j_1<…<j_k≤m−1}
//!   ‖W_m⋯W_{j_k+1}‖·‖W_{j_k}⋯W_{j_{k−1}+1}‖⋯‖W_{j_1}⋯W_1‖,
//!
//!   a sum over the 2^{m−1} ways of cutting the chain into contiguous segments (expand each R
//!   into I/2 + N/2: a cut where N is taken, a product where I is). The term with every cut is
//!   the product of norms and the term without cuts is ‖W_m⋯W_1‖, so
//!   ‖W_m⋯W_1‖ ≤ CP ≤ Π‖W_k‖. [`cp_bound`] evaluates θ by dynamic programming over the last
//!   cut: θ_0 = 1, θ_k = Σ_{j<k} θ_j·‖W_k⋯W_{j+1}‖.
//!   Separable activations with slope in [0, 1] are firmly nonexpansive (ReLU, tanh, identity;
//!   a 0/1 dropout mask times one of them too); the sigmoid is ¼·(firmly nonexpansive), the ¼
//!   folded into the next weight, as is a dropout's 1/(1−p). Identity activations are not cut
//!   at all (the matrices are multiplied: an identity chain gets exactly ‖W_m⋯W_1‖). GELU is not
//!   averaged (its slope goes negative): the chain is split there, Lip ≤ Lip(after)·1.1289·
//!   Lip(before). An active DropConnect layer is its own segment with ‖W‖_F/(1−p) (every masked
//!   matrix has a smaller Frobenius norm).
//! * **Local over the data's box** (ρ_l^box): interval propagation (IBP) of the axis-aligned
//!   bounding box of the captured points at T_l bounds every unit's pre-activation, hence its
//!   slope: u_k = sup of act′ over the interval (ReLU 0 on a dead unit, else 1; tanh max sech²;
//!   sigmoid max σ′). On the box, act_k = diag(u_k)∘(firmly nonexpansive) (a slope-[0, u] map
//!   is u times a slope-[0, 1] map, extended outside the interval by constants), so CP applies
//!   with W_{k+1}·diag(u_k). This certifies the constant of the loss **on the box**, hence on
//!   the convex hull of the captured train and test points at T_l: enough for the W1 between
//!   those empirical clouds, which is what the W1 bound uses, but not for points outside it
//!   (a fresh draw of dropout/noise can leave the box). After an active Gaussian-noise layer
//!   the box is unbounded and the global slopes are used from there on.
//!
//! Spectral norms of products are largest singular values from nalgebra's SVD in f64, not
//! power iteration (which approaches σ_max from below and so does not certify). Each is
//! inflated to an upper bound of the exact real value: the f64 products carry an absolute
//! error tracked as ‖|A||B|‖_F·γ_n ≤ γ_n‖A‖_F‖B‖_F per multiplication (γ_n = n·u/(1 − n·u),
//! u = 2⁻⁵³), and a backward-stable SVD returns singular values within p(n)·u·‖M‖ of the exact
//! ones (Weyl), which the relative 1e-10 covers for any width below ~10⁵ (p(n) of order n).
//! Both are far below the digits reported; they are there so that "certified" means it.

use funnel_model::{to_f32_vec, Activation, LayeredModel, Regularizer, Stochastic};
use nalgebra::{DMatrix, DVector};

use crate::cloud::Points;
use crate::lipschitz::CE_LIPSCHITZ;

const U: f64 = f64::EPSILON / 2.0;
/// Relative inflation of an SVD's largest singular value (see the module docs).
const SVD_SLACK: f64 = 1e-10;

fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// A matrix and an upper bound on the spectral norm of its error against the exact product it
/// stands for.
#[derive(Clone, Debug)]
struct Tracked {
    m: DMatrix<f64>,
    err: f64,
}

impl Tracked {
    fn exact(m: DMatrix<f64>) -> Self {
        Tracked { m, err: 0.0 }
    }

    /// `self · rhs`, with the error of the product propagated.
    fn mul(&self, rhs: &Tracked) -> Tracked {
        let m = &self.m * &rhs.m;
        let (fa, fb) = (self.m.norm(), rhs.m.norm());
        // (A+E)(B+F) − AB = EB + AF + EF; plus rounding γ_n·‖A‖_F‖B‖_F
        let err = (self.err * (fb + rhs.err) + fa * rhs.err + gamma(self.m.ncols()) * fa * fb)
            * (1.0 + 1e-12);
        Tracked { m, err }
    }

    fn op_upper(&self) -> f64 {
        op_norm_upper(&self.m) + self.err * (1.0 + 1e-12)
    }
}

/// An upper bound on ‖m‖_op of the f64 matrix itself: SVD's largest singular value inflated by
/// [`SVD_SLACK`] (0 for an empty or zero matrix; NaN when an entry is not finite).
pub fn op_norm_upper(m: &DMatrix<f64>) -> f64 {
    if m.is_empty() {
        return 0.0;
    }
    if m.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    if m.iter().all(|v| *v == 0.0) {
        return 0.0;
    }
    let s = m.clone().singular_values().max();
    s * (1.0 + SVD_SLACK)
}

/// The CP bound θ_m / 2^{m−1} of the chain `mats` (forward order: `mats[0]` acts first) whose
/// consecutive matrices are joined by firmly nonexpansive maps. 1 for an empty chain.
pub fn cp_bound(mats: &[DMatrix<f64>]) -> f64 {
    let tracked: Vec<Tracked> = mats.iter().cloned().map(Tracked::exact).collect();
    cp_tracked(&tracked)
}

fn cp_tracked(mats: &[Tracked]) -> f64 {
    let m = mats.len();
    if m == 0 {
        return 1.0;
    }
    // norms[j][k] = ‖M_k⋯M_{j+1}‖ for 0 ≤ j < k ≤ m (1-based k as in the formula)
    let mut norms = vec![vec![f64::NAN; m + 1]; m + 1];
    for j in 0..m {
        let mut p = mats[j].clone();
        norms[j][j + 1] = p.op_upper();
        for k in j + 1..m {
            p = mats[k].mul(&p);
            norms[j][k + 1] = p.op_upper();
        }
    }
    let mut theta = vec![0.0; m + 1];
    theta[0] = 1.0;
    for k in 1..=m {
        theta[k] = (0..k).map(|j| theta[j] * norms[j][k]).sum();
    }
    theta[m] / 2f64.powi(m as i32 - 1)
}

/// The brute-force sum over all 2^{m−1} cut sets (tests check [`cp_bound`] against it).
pub fn cp_bound_by_enumeration(mats: &[DMatrix<f64>]) -> f64 {
    let m = mats.len();
    if m == 0 {
        return 1.0;
    }
    let mut sum = 0.0;
    for cuts in 0u64..(1 << (m - 1)) {
        // bit i set: a cut between mats[i] and mats[i+1]
        let mut term = 1.0;
        let mut seg = mats[0].clone();
        for (i, w) in mats.iter().enumerate().skip(1) {
            if cuts >> (i - 1) & 1 == 1 {
                term *= op_norm_upper(&seg);
                seg = w.clone();
            } else {
                seg = w * seg;
            }
        }
        sum += term * op_norm_upper(&seg);
    }
    sum / 2f64.powi(m as i32 - 1)
}

/// One weight layer on the host, in the math convention z = A·t + b (A is `[d_out, d_in]`).
#[derive(Clone, Debug)]
pub struct HostLayer {
    pub a: DMatrix<f64>,
    pub b: DVector<f64>,
    pub activation: Activation,
    pub regularizer: Regularizer,
}

/// A layered network T_k = R_k(act_k(A_k·T_{k−1} + b_k)), k = 1..=L, on the host in f64 (the
/// f32 weights are exact in f64), with the stochastic mode it is measured in.
#[derive(Clone, Debug)]
pub struct HostChain {
    pub layers: Vec<HostLayer>,
    pub mode: Stochastic,
}

/// A closed interval per unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervals {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

/// What interval propagation says about one layer k > l: its pre-activation intervals (`None`
/// once the box is unbounded) and each unit's slope bound (the global one where unbounded).
#[derive(Clone, Debug)]
pub struct LayerBox {
    pub pre: Option<Intervals>,
    pub post: Option<Intervals>,
    /// sup of act′ over the unit's interval; sigmoid's includes its ¼. `None` for the logits.
    pub slopes: Option<Vec<f64>>,
}

/// How a layer's activation joins the matrices before and after it.
enum Joint {
    /// Identity without a mask: multiply the matrices.
    Merge,
    /// Firmly nonexpansive (after scaling): a CP cut point.
    Averaged,
    /// Not averaged: split the chain and multiply by this Lipschitz constant.
    Split(f64),
}

fn dropout_scale(reg: Regularizer, mode: Stochastic) -> f64 {
    match reg {
        Regularizer::Dropout { p } if mode.is_active() && p > 0.0 => 1.0 / (1.0 - p),
        _ => 1.0,
    }
}

fn dropconnect_p(reg: Regularizer, mode: Stochastic) -> Option<f64> {
    match reg {
        Regularizer::DropConnect { p } if mode.is_active() && p > 0.0 => Some(p),
        _ => None,
    }
}

fn noisy(reg: Regularizer, mode: Stochastic) -> bool {
    matches!(reg, Regularizer::GaussianNoise { std } if mode.is_active() && std > 0.0)
}

fn joint(act: Activation, reg: Regularizer, mode: Stochastic) -> Joint {
    match act {
        Activation::Gelu => Joint::Split(act.lipschitz()),
        // a 0/1 dropout mask is itself firmly nonexpansive: cut there
        Activation::Identity if dropout_scale(reg, mode) == 1.0 => Joint::Merge,
        _ => Joint::Averaged,
    }
}

/// The global slope bound of one unit of `act`, as the factor folded into the next weight.
fn global_slope(act: Activation) -> f64 {
    match act {
        Activation::Sigmoid => 0.25,
        // GELU's constant enters through `Joint::Split`
        _ => 1.0,
    }
}

/// sup of act′ over [lo, hi] (as the factor folded into the next weight), rounded up.
fn slope_over(act: Activation, lo: f64, hi: f64) -> f64 {
    let m = if lo <= 0.0 && hi >= 0.0 {
        0.0
    } else {
        lo.abs().min(hi.abs())
    };
    match act {
        Activation::Relu => {
            if hi <= 0.0 {
                0.0
            } else {
                1.0
            }
        }
        Activation::Tanh => (1.0 / m.cosh().powi(2) * (1.0 + 1e-12)).min(1.0),
        // σ′(x) = 1/(4cosh²(x/2))
        Activation::Sigmoid => 0.25 * (1.0 / (m / 2.0).cosh().powi(2) * (1.0 + 1e-12)).min(1.0),
        Activation::Identity | Activation::Gelu => global_slope(act),
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + statrs::function::erf::erf(x / std::f64::consts::SQRT_2))
}

/// GELU's minimiser (GELU′ = 0 at x ≈ −0.7518).
const GELU_ARGMIN: f64 = -0.751_791_524_693_564_5;

/// The image of [lo, hi] under `act`, widened by a rounding margin.
fn image(act: Activation, lo: f64, hi: f64) -> (f64, f64) {
    let pad = |v: f64| 1e-14 * (1.0 + v.abs());
    match act {
        Activation::Identity => (lo, hi),
        Activation::Relu => (lo.max(0.0), hi.max(0.0)),
        Activation::Tanh => (
            (lo.tanh() - pad(1.0)).max(-1.0),
            (hi.tanh() + pad(1.0)).min(1.0),
        ),
        Activation::Sigmoid => {
            let s = |x: f64| 1.0 / (1.0 + (-x).exp());
            ((s(lo) - pad(1.0)).max(0.0), (s(hi) + pad(1.0)).min(1.0))
        }
        Activation::Gelu => {
            let (a, b) = (gelu(lo), gelu(hi));
            let min = if lo <= GELU_ARGMIN && GELU_ARGMIN <= hi {
                gelu(GELU_ARGMIN)
            } else {
                a.min(b)
            };
            let max = a.max(b);
            (min - pad(min) - 1e-12, max + pad(max) + 1e-12)
        }
    }
}

impl HostChain {
    /// The network's weights, biases and layer descriptions, read back to the host.
    pub fn of<M: LayeredModel>(model: &M, mode: Stochastic) -> Self {
        let infos = model.layers();
        let weights = model.lipschitz_weights();
        let biases = model.lipschitz_biases();
        let layers = weights
            .into_iter()
            .zip(biases)
            .enumerate()
            .map(|(i, (w, b))| {
                let [d_in, d_out] = w.dims();
                let data: Vec<f64> = to_f32_vec(w).iter().map(|v| *v as f64).collect();
                // burn stores [d_in, d_out] row-major: that is Aᵀ, so A = [d_out, d_in]
                let a = DMatrix::from_row_slice(d_in, d_out, &data).transpose();
                let b = match b {
                    Some(b) => DVector::from_iterator(
                        d_out,
                        to_f32_vec(b.reshape([d_out as i32]))
                            .iter()
                            .map(|v| *v as f64),
                    ),
                    None => DVector::zeros(d_out),
                };
                let info = &infos[i + 1];
                HostLayer {
                    a,
                    b,
                    activation: info.activation,
                    regularizer: info.regularizer,
                }
            })
            .collect();
        HostChain { layers, mode }
    }

    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The chain from T_l to the logits as CP segments, and the scalar factor between them.
    /// `slopes[k]` (k = l+1..L−1, indexed by k) overrides the global slope bounds of layer k's
    /// units (the box constant); `None` uses the global ones.
    fn segments(&self, l: usize, slopes: Option<&[Option<Vec<f64>>]>) -> (f64, Vec<Vec<Tracked>>) {
        let depth = self.depth();
        let mode = self.mode;
        let mut factor = 1.0;
        let mut segments: Vec<Vec<Tracked>> = Vec::new();
        let mut cur: Vec<Tracked> = Vec::new();
        let mut merge_next = false;
        let mut pending: Option<DVector<f64>> = None;
        for k in l + 1..=depth {
            let layer = &self.layers[k - 1];
            let scaled = match &pending {
                Some(v) => {
                    let mut a = layer.a.clone();
                    for (j, mut col) in a.column_iter_mut().enumerate() {
                        col *= v[j];
                    }
                    // each entry rounded once
                    let err = a.norm() * U;
                    Tracked { m: a, err }
                }
                None => Tracked::exact(layer.a.clone()),
            };
            if let Some(p) = dropconnect_p(layer.regularizer, mode) {
                segments.push(std::mem::take(&mut cur));
                let fro = (scaled.m.norm() + scaled.err) * (1.0 + 1e-12);
                factor *= fro / (1.0 - p);
            } else if merge_next && !cur.is_empty() {
                let last = cur.pop().expect("not empty");
                cur.push(scaled.mul(&last));
            } else {
                cur.push(scaled);
            }
            if k == depth {
                break;
            }
            let act = layer.activation;
            merge_next = false;
            match joint(act, layer.regularizer, mode) {
                Joint::Merge => merge_next = true,
                Joint::Averaged => {}
                Joint::Split(f) => {
                    segments.push(std::mem::take(&mut cur));
                    factor *= f;
                }
            }
            let d = layer.a.nrows();
            let drop = dropout_scale(layer.regularizer, mode);
            let v: DVector<f64> = match slopes.and_then(|s| s[k].as_ref()) {
                Some(u) => DVector::from_iterator(d, u.iter().map(|s| s * drop)),
                None => DVector::from_element(d, global_slope(act) * drop),
            };
            pending = if v.iter().all(|x| *x == 1.0) {
                None
            } else {
                Some(v)
            };
        }
        segments.push(cur);
        (factor, segments)
    }

    fn constant(&self, l: usize, slopes: Option<&[Option<Vec<f64>>]>) -> f64 {
        let (factor, segments) = self.segments(l, slopes);
        CE_LIPSCHITZ * factor * segments.iter().map(|s| cp_tracked(s)).product::<f64>()
    }

    /// ρ_l^CP for l = 0..=L (ρ_L = √2).
    pub fn cp_constants(&self) -> Vec<f64> {
        (0..=self.depth()).map(|l| self.constant(l, None)).collect()
    }

    /// The product of norms with the same certified (SVD, inflated) spectral norms, for
    /// l = 0..=L: √2·Π_k Lip(act_{k−1})·‖W_k‖/(1−p) (‖W_k‖_F/(1−p) under active DropConnect,
    /// a dropout's 1/(1−p) on the layer it acts in): the treatment of `lipschitz_constants`.
    pub fn product_constants(&self) -> Vec<f64> {
        let depth = self.depth();
        (0..=depth)
            .map(|l| {
                let mut rho = CE_LIPSCHITZ;
                let mut scale = 1.0;
                for k in l + 1..=depth {
                    let layer = &self.layers[k - 1];
                    let norm = match dropconnect_p(layer.regularizer, self.mode) {
                        Some(p) => layer.a.norm() * (1.0 + 1e-12) / (1.0 - p),
                        None => op_norm_upper(&layer.a),
                    };
                    rho *= scale * norm;
                    if k < depth {
                        scale = layer.activation.lipschitz()
                            * dropout_scale(layer.regularizer, self.mode);
                    }
                }
                rho
            })
            .collect()
    }

    /// Interval propagation of the box [lo, hi] at T_l through layers l+1..=L; entry k of the
    /// result (k = l+1..=L, `None` below) describes layer k.
    pub fn propagate(&self, l: usize, lo: &[f64], hi: &[f64]) -> Vec<Option<LayerBox>> {
        let depth = self.depth();
        let mode = self.mode;
        // entries 0..=l stay None; layer k's entry is pushed in order
        let mut out: Vec<Option<LayerBox>> = vec![None; l.min(depth) + 1];
        let mut state: Option<(Vec<f64>, Vec<f64>)> = Some((lo.to_vec(), hi.to_vec()));
        for k in l + 1..=depth {
            let layer = &self.layers[k - 1];
            let pre = state
                .as_ref()
                .map(|(lo, hi)| match dropconnect_p(layer.regularizer, mode) {
                    Some(p) => dropconnect_interval(layer, lo, hi, p),
                    None => affine_interval(layer, lo, hi),
                });
            if k == depth {
                out.push(Some(LayerBox {
                    pre,
                    post: None,
                    slopes: None,
                }));
                break;
            }
            let act = layer.activation;
            let d = layer.a.nrows();
            let slopes = match &pre {
                Some(z) => (0..d).map(|i| slope_over(act, z.lo[i], z.hi[i])).collect(),
                None => vec![global_slope(act); d],
            };
            let post = pre.as_ref().and_then(|z| {
                if noisy(layer.regularizer, mode) {
                    return None;
                }
                let s = dropout_scale(layer.regularizer, mode);
                let (mut lo, mut hi) = (Vec::with_capacity(d), Vec::with_capacity(d));
                for i in 0..d {
                    let (a, b) = image(act, z.lo[i], z.hi[i]);
                    if s != 1.0 {
                        // a dropped unit is 0, a kept one scaled by 1/(1−p)
                        lo.push((a * s).min(0.0) * (1.0 + 1e-15));
                        hi.push((b * s).max(0.0) * (1.0 + 1e-15));
                    } else {
                        lo.push(a);
                        hi.push(b);
                    }
                }
                Some(Intervals { lo, hi })
            });
            state = post.as_ref().map(|p| (p.lo.clone(), p.hi.clone()));
            out.push(Some(LayerBox {
                pre,
                post,
                slopes: Some(slopes),
            }));
        }
        out
    }

    /// ρ_l^box: the CP bound with each unit's slope bounded over the propagated box at T_l.
    /// NaN when the box is missing or not finite.
    pub fn box_constant(&self, l: usize, lo: &[f64], hi: &[f64]) -> f64 {
        if l == self.depth() {
            return CE_LIPSCHITZ;
        }
        if lo.iter().chain(hi).any(|v| !v.is_finite()) || lo.len() != self.layers[l].a.ncols() {
            return f64::NAN;
        }
        let boxes = self.propagate(l, lo, hi);
        let slopes: Vec<Option<Vec<f64>>> = boxes
            .into_iter()
            .map(|b| b.and_then(|b| b.slopes))
            .collect();
        self.constant(l, Some(&slopes))
    }
}

/// z ∈ A·[lo, hi] + b: centre/radius form, widened by the rounding of the f64 sums.
fn affine_interval(layer: &HostLayer, lo: &[f64], hi: &[f64]) -> Intervals {
    let n = lo.len();
    let c = DVector::from_iterator(n, lo.iter().zip(hi).map(|(a, b)| 0.5 * (a + b)));
    let r = DVector::from_iterator(
        n,
        lo.iter()
            .zip(hi)
            .zip(c.iter())
            .map(|((a, b), c)| (b - c).max(c - a) * (1.0 + 4.0 * U)),
    );
    let abs_a = layer.a.abs();
    let zc = &layer.a * &c + &layer.b;
    let zr = &abs_a * &r;
    let mag = &abs_a * c.abs() + &zr + layer.b.abs();
    let g = 2.0 * gamma(n + 2);
    let (mut out_lo, mut out_hi) = (Vec::with_capacity(zc.len()), Vec::with_capacity(zc.len()));
    for i in 0..zc.len() {
        let pad = g * mag[i] + f64::MIN_POSITIVE;
        out_lo.push(zc[i] - zr[i] - pad);
        out_hi.push(zc[i] + zr[i] + pad);
    }
    Intervals {
        lo: out_lo,
        hi: out_hi,
    }
}

/// z_j ∈ b_j + Σ_i hull{0, lo_i·w′_ij, hi_i·w′_ij}, w′ = A/(1−p): every masked weight lies
/// between 0 and w′.
fn dropconnect_interval(layer: &HostLayer, lo: &[f64], hi: &[f64], p: f64) -> Intervals {
    let (rows, cols) = layer.a.shape();
    let s = 1.0 / (1.0 - p);
    let (mut out_lo, mut out_hi) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for j in 0..rows {
        let (mut a, mut b, mut mag) = (layer.b[j], layer.b[j], layer.b[j].abs());
        for i in 0..cols {
            let w = layer.a[(j, i)] * s;
            let (x, y) = (lo[i] * w, hi[i] * w);
            a += x.min(y).min(0.0);
            b += x.max(y).max(0.0);
            mag += x.abs().max(y.abs());
        }
        let pad = 2.0 * gamma(cols + 2) * mag + f64::MIN_POSITIVE;
        out_lo.push(a - pad);
        out_hi.push(b + pad);
    }
    Intervals {
        lo: out_lo,
        hi: out_hi,
    }
}

/// The axis-aligned bounding box of the given point sets (same dimension): `None` when there
/// are no points or the dimensions differ.
pub fn bounding_box(sets: &[&Points]) -> Option<(Vec<f64>, Vec<f64>)> {
    let d = sets.first()?.d;
    if sets.iter().any(|s| s.d != d) || sets.iter().all(|s| s.n == 0) {
        return None;
    }
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for s in sets {
        for row in s.data.chunks(d.max(1)) {
            for (i, v) in row.iter().enumerate() {
                let v = *v as f64;
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
        }
    }
    Some((lo, hi))
}

/// Every certified constant of a network per layer l = 0..=L.
#[derive(Clone, Debug)]
pub struct Certified {
    /// √2·Π Lip·‖W‖ with SVD norms (the certified twin of `lipschitz_constants`).
    pub product: Vec<f64>,
    pub cp: Vec<f64>,
    /// NaN where no box was given.
    pub boxed: Vec<f64>,
    /// min(product, CP, box), NaN-free where any of them is finite.
    pub cert: Vec<f64>,
}

/// The product, CP and box constants of `model` in `mode`; `boxes[l]` is the bounding box of
/// the captured points at T_l (`None`: no box constant at that layer).
pub fn certified_constants<M: LayeredModel>(
    model: &M,
    mode: Stochastic,
    boxes: &[Option<(Vec<f64>, Vec<f64>)>],
) -> Certified {
    let chain = HostChain::of(model, mode);
    let product = chain.product_constants();
    let cp = chain.cp_constants();
    let boxed: Vec<f64> = (0..=chain.depth())
        .map(|l| match boxes.get(l).and_then(|b| b.as_ref()) {
            Some((lo, hi)) => chain.box_constant(l, lo, hi),
            None => f64::NAN,
        })
        .collect();
    let cert = (0..=chain.depth())
        .map(|l| {
            [product[l], cp[l], boxed[l]]
                .into_iter()
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::min)
        })
        .collect();
    Certified {
        product,
        cp,
        boxed,
        cert,
    }
}
