//! The layer-wise generalization bounds of He & Goldfeld (DESIGN §2.3–§2.5) from estimated
//! divergences and Lipschitz constants. (About 400 lines of code; the rest of the file is the
//! hand-computed checks of Holm, the upper ends and the rows.)

use funnel_model::{LayerInfo, Stochastic};
use serde::{Deserialize, Serialize};

use crate::calibrate::{normal_upper_quantile, se_excess, t_quantile};
use crate::contraction::{ratio_interval, RatioInterval};
use crate::divergence::LayerDivergence;
use crate::estimate::Estimate;

/// Sub-Gaussian constant of the 0-1 loss (range 1).
pub const SIGMA_ZERO_ONE: f64 = 0.5;

/// |gen| ≤ sqrt(2σ²·D) for a σ-sub-Gaussian loss. `d` is the upper end of the divergence's
/// interval; a `d` ≤ 0 (an estimator reading below zero) or NaN gives NaN, never a clipped 0.
pub fn kl_bound(d: f64, sigma: f64) -> f64 {
    if d.is_nan() || d <= 0.0 {
        return f64::NAN;
    }
    (2.0 * sigma * sigma * d).sqrt()
}

/// Holm's step-down procedure at level `alpha` over the finite p-values: which are rejected
/// (NaN p-values are never rejected and do not count towards m).
pub fn holm(p_values: &[f64], alpha: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..p_values.len())
        .filter(|&i| p_values[i].is_finite())
        .collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let m = order.len();
    let mut out = vec![false; p_values.len()];
    for (rank, &i) in order.iter().enumerate() {
        // (relative slack: 1/(1 + 99) must clear 0.05/5 although both are rounded)
        if p_values[i] <= alpha / (m - rank) as f64 * (1.0 + 1e-9) {
            out[i] = true;
        } else {
            break;
        }
    }
    out
}

/// Marks which of the estimates are resolved (Holm over the layers at `alpha`) and fills in
/// each one's resolution (z_{1−α/m}·sd_null: the smallest excess the first Holm step could
/// resolve) and the points that would resolve its measured excess.
pub fn resolve(estimates: &mut [&mut Estimate], alpha: f64) {
    let p: Vec<f64> = estimates
        .iter()
        .map(|e| if e.ok() { e.p_value } else { f64::NAN })
        .collect();
    let rejected = holm(&p, alpha);
    let m = p.iter().filter(|p| p.is_finite()).count().max(1);
    let z = normal_upper_quantile(alpha / m as f64);
    // the bounds' upper ends: one-sided 1 − α/m over the layers with a value (Bonferroni), so
    // that every layer's bound — and so their minimum — holds together at level 1 − α
    let valued = estimates.iter().filter(|e| e.ok()).count().max(1);
    for (e, r) in estimates.iter_mut().zip(rejected) {
        e.resolved = r;
        // as the interval's upper end, with the one-sided t: the raw reading with se, the
        // null-corrected one with se_excess (NaN without half-samples)
        e.upper = if e.ok() {
            let t = t_quantile(e.resamples, 1.0 - alpha / valued as f64);
            let raw = e.value + t * e.se;
            if e.excess.is_nan() {
                raw
            } else {
                raw.max(e.excess + t * se_excess(e.se, e.null_sd, e.permutations))
            }
        } else {
            f64::NAN
        };
        e.resolution = z * e.null_sd;
        // only for an excess below the resolution: one at or above it is unresolved because
        // of the permutation p-value's floor or the Holm step, not for want of points
        e.points_needed = if !r && e.excess > 0.0 && e.excess < e.resolution {
            (e.points_train as f64 * (e.resolution / e.excess).powi(2)).ceil()
        } else {
            f64::NAN
        };
    }
}

/// |gen| ≤ ρ·W + c·TV(π_tr, π_te) for a loss with values in [0, c] that is ρ-Lipschitz in the
/// layer's representation for every label.
pub fn w1_bound(rho: f64, w: f64, c: f64, label_tv: f64) -> f64 {
    rho * w + c * label_tv
}

/// The name of a layer of funnel's own networks: `input`, `hidden<l>` or `logits`.
pub fn default_layer_name(info: &LayerInfo) -> String {
    match info.role {
        funnel_model::LayerRole::Input => "input".into(),
        funnel_model::LayerRole::Logits => "logits".into(),
        funnel_model::LayerRole::Hidden => format!("hidden{}", info.index),
    }
}

/// One row of `layers.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRow {
    pub layer: usize,
    /// The layer's name: `input`, `hidden<l>`, `logits` for funnel's own networks
    /// ([`default_layer_name`]), the module's name for a network read from a layers file.
    /// Empty in summaries written before names were recorded.
    #[serde(default)]
    pub name: String,
    pub width: usize,
    pub role: String,
    pub activation: String,
    pub regularizer: String,
    /// Rank of the layer's point cloud (largest per-class span rank).
    pub rank: usize,
    pub kl: Estimate,
    /// Why the layer's KL estimator was chosen (`auto`'s rule, or "as configured").
    #[serde(default)]
    pub kl_why: String,
    /// sqrt(D^up/2), D^up the simultaneous upper end of the KL estimate ([`Estimate::upper`]):
    /// the KL bound on the 0-1 loss gap (NaN when the upper end is ≤ 0 or missing).
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub kl_bound: f64,
    /// c·sqrt(D^up/2): the KL bound on the gap of the cross-entropy clipped at c.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub kl_bound_ce: f64,
    pub w1: Estimate,
    /// ρ_l, the Lipschitz constant of the cross-entropy in this layer's representation.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub lipschitz: f64,
    /// ρ_l·W_l^up + c·TV (W_l^up the simultaneous upper end of W1): the W1 bound on the gap of
    /// the cross-entropy clipped at c.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub w1_bound: f64,
    /// ρ̂_l, the empirical local Lipschitz constant: the largest ‖∇_{T_l} CE‖ at the captured
    /// examples — a lower estimate of the true constant, not a certificate.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub lipschitz_local: f64,
    /// ρ̂_l·W_l + c·TV: the W1 "bound" with the local constant (not a certified bound).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_bound_local: f64,
    /// ρ_l^CP: the Combettes–Pesquet certified constant of the chain from T_l to the loss
    /// ([`crate::certified`]); NaN where the weights are unknown (a layers file).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub lipschitz_cp: f64,
    /// ρ_l^box: CP with each unit's slope bounded over the interval-propagated bounding box of
    /// the captured points at T_l: certified on that box (the convex hull of the clouds).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub lipschitz_box: f64,
    /// The tightest certified constant: min(product of norms (SVD), CP, box).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub lipschitz_cert: f64,
    /// ρ_l^cert·W_l^up + c·TV: the W1 bound under the tightest certified constant.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_bound_cert: f64,
    /// ρ_l·(W_l − null mean): the null-subtracted W1 weighted by the product of norms (a point
    /// estimate, not a bound; negative where W_l sits below its sampling floor).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_debiased: f64,
    /// ρ_l^cert·(W_l − null mean).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_debiased_cert: f64,
    /// ρ̂_l·(W_l − null mean), with the empirical (lower) constant.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_debiased_local: f64,
    /// The KL bound is at least the loss's range (1 for the 0-1 loss): it says nothing.
    #[serde(default)]
    pub kl_vacuous: bool,
    /// The W1 bound is at least c, the range of the clipped cross-entropy: it says nothing.
    #[serde(default)]
    pub w1_vacuous: bool,
    /// The KL estimate rose above the previous layer's, by the same estimator, by more than
    /// both intervals allow — impossible in theory (data processing), so an estimator artefact.
    pub kl_rise: bool,
    /// η_l, the SDPI coefficient of the channel T_{l−1} → T_l (DESIGN §2.6): 1 − p^d for
    /// Dropout, 1 − p^(d_in·d_out) for DropConnect, erf(a√d/(β√2)) for Gaussian noise after a
    /// bounded activation, 1 otherwise, and 1 for every layer when stochastic layers are off at
    /// measurement. Layer 0 (the input) has η = 1.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub eta: f64,
    /// Π_{k≤l} η_k.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub eta_product: f64,
    /// The contracted divergence: KL(π_tr‖π_te) + Π_{k≤l} η_k·(D_0 − KL(π_tr‖π_te)); the label
    /// term does not contract, the input-dependent part does. Uses the estimate of D_0.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub kl_contracted: f64,
    /// sqrt(kl_contracted / 2): the contracted KL bound on the 0-1 loss gap.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub kl_contracted_bound: f64,
    /// The measured contraction (D_l − KL_π)/(D_{l−1} − KL_π) of the input-dependent part,
    /// between consecutive estimates; NaN at layer 0, when either estimate failed, or when the
    /// previous one is ≤ 0 (no ratio to take). To set beside η_l.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub kl_ratio: f64,
    /// The interval of `kl_ratio` at the run's confidence ([`ratio_interval`]): paired
    /// half-samples when both layers' KL half-samples took the same examples, else the
    /// conservative quotient of the two layers' intervals. `hi` is +∞ where the previous
    /// layer's input-dependent part can be ≤ 0 (the ratio is then unbounded above); both NaN
    /// where `kl_ratio` is.
    #[serde(
        default = "nan",
        serialize_with = "crate::nan::serialize_inf",
        deserialize_with = "crate::nan::deserialize_inf"
    )]
    pub kl_ratio_lo: f64,
    #[serde(
        default = "nan",
        serialize_with = "crate::nan::serialize_inf",
        deserialize_with = "crate::nan::deserialize_inf"
    )]
    pub kl_ratio_hi: f64,
    /// How the ratio's interval was made: "paired", "conservative", or "" (none).
    #[serde(default)]
    pub kl_ratio_method: String,
    /// The measured ratio against η_l: −1 when its interval lies below η_l (the layer contracts
    /// more than η requires), 0 when it contains η_l, +1 when it lies above η_l (the measured
    /// contraction is weaker than the SDPI allows: an estimator problem or a violation), NaN
    /// without an interval.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub kl_ratio_vs_eta: f64,
    /// I(T_l; Y) on the training cloud, when measured.
    pub mi_ty: Option<Estimate>,
    /// I(X; T_l), on layers with Gaussian noise (or every layer when `metrics.beta` is set).
    pub mi_xt: Option<Estimate>,
}

/// Every layer's bounds, and where they are smallest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bounds {
    pub rows: Vec<LayerRow>,
    /// argmin_l of the W1 bound: the generalization funnel.
    pub funnel_layer: Option<usize>,
    /// argmin_l of the W1 estimate W_l itself (the paper's layer of minimal 1-Wasserstein
    /// distance, without the Lipschitz weights).
    #[serde(default)]
    pub w1_min_layer: Option<usize>,
    /// argmin_l of ρ̂_l·W_l + c·TV with the local constants (None when not computed).
    #[serde(default)]
    pub funnel_layer_local: Option<usize>,
    /// argmin_l of the KL bound over the *resolved* layers (None when none resolves).
    pub kl_best_layer: Option<usize>,
    /// argmin_l of the KL bound over every layer: the bounds hold together (simultaneous
    /// upper ends), so their minimum is a bound whether or not its layer resolves.
    #[serde(default)]
    pub kl_best_layer_any: Option<usize>,
    /// argmin_l of the W1 bound over every layer.
    #[serde(default)]
    pub funnel_layer_any: Option<usize>,
    /// argmin_l of the W1 bound under the tightest certified constant, over the resolved
    /// layers ([`add_certified`]; None when none resolves).
    #[serde(default)]
    pub funnel_layer_cert: Option<usize>,
    /// The same over every layer.
    #[serde(default)]
    pub funnel_layer_cert_any: Option<usize>,
    /// argmin_l over every layer of ρ_l·(W_l − null), ρ^cert_l·(W_l − null) and
    /// ρ̂_l·(W_l − null): the debiased W1 funnels.
    #[serde(default)]
    pub funnel_layer_debiased: Option<usize>,
    #[serde(default)]
    pub funnel_layer_debiased_cert: Option<usize>,
    #[serde(default)]
    pub funnel_layer_debiased_local: Option<usize>,
}

fn argmin(values: impl Iterator<Item = f64>) -> Option<usize> {
    values
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

fn nan() -> f64 {
    f64::NAN
}

/// η_l of every layer (index 0 = the input, η = 1), from the layers' widths, regularizers and
/// activations; all 1 when stochastic layers are off at measurement.
pub fn sdpi_coefficients(layers: &[LayerInfo], mode: Stochastic) -> Vec<f64> {
    (0..layers.len())
        .map(|l| {
            if l == 0 || !mode.is_active() {
                return 1.0;
            }
            let info = &layers[l];
            info.regularizer
                .sdpi_eta(layers[l - 1].width, info.width, info.activation)
        })
        .collect()
}

/// Assembles the per-layer rows. `lipschitz` holds the certified constants ρ_l and
/// `lipschitz_local` the empirical ones ρ̂_l (NaN where not computed); `clip` is the c of the
/// clipped cross-entropy; `mode` says whether stochastic layers were active when the layers
/// were captured (for η); `alpha` the level at which layers are resolved (Holm over the
/// layers, separately for KL, W1 and I(T;Y)).
///
/// Every bound is computed from the upper end of its divergence's interval (a conservative
/// bound); the headline layers (`kl_best_layer`, `funnel_layer`) are argmins over the
/// resolved layers only.
pub fn assemble(
    layers: &[LayerInfo],
    mut divergences: Vec<LayerDivergence>,
    lipschitz: &[f64],
    lipschitz_local: &[f64],
    clip: f64,
    mode: Stochastic,
    alpha: f64,
) -> Bounds {
    assert_eq!(layers.len(), divergences.len(), "one divergence per layer");
    assert_eq!(
        layers.len(),
        lipschitz.len(),
        "one Lipschitz constant per layer"
    );
    assert_eq!(
        layers.len(),
        lipschitz_local.len(),
        "one local constant per layer"
    );
    let etas = sdpi_coefficients(layers, mode);
    resolve(
        &mut divergences
            .iter_mut()
            .map(|d| &mut d.kl)
            .collect::<Vec<_>>(),
        alpha,
    );
    resolve(
        &mut divergences
            .iter_mut()
            .map(|d| &mut d.w1)
            .collect::<Vec<_>>(),
        alpha,
    );
    let mut mis: Vec<&mut Estimate> = divergences
        .iter_mut()
        .filter_map(|d| d.mi_ty.as_mut())
        .collect();
    resolve(&mut mis, alpha);
    // the input-dependent part of D_0, which the SDPI contracts
    let input_part = |e: &Estimate| {
        if e.error.is_some() {
            f64::NAN
        } else {
            e.value - e.label_term
        }
    };
    // the upper end of D_0, as for every bound
    let d0 = divergences.first().map_or(f64::NAN, |d| {
        if d.kl.error.is_some() {
            f64::NAN
        } else {
            d.kl.upper - d.kl.label_term
        }
    });
    // the label term is the same at every layer (same labels); take it from layer 0 so that a
    // later layer whose estimate failed still gets its contracted bound
    let label0 = divergences.first().map_or(f64::NAN, |d| d.kl.label_term);
    let mut eta_product = 1.0;
    let mut rows: Vec<LayerRow> = Vec::with_capacity(layers.len());
    for ((((info, div), &rho), &eta), &rho_local) in layers
        .iter()
        .zip(divergences)
        .zip(lipschitz)
        .zip(&etas)
        .zip(lipschitz_local)
    {
        // only between layers measured by the same estimator: across estimators (e.g. kNN on
        // the input, smoothed on a noisy layer) the numbers carry different biases
        let kl_rise = rows.last().is_some_and(|prev| {
            prev.kl.estimator == div.kl.estimator
                && div.kl.lo.is_finite()
                && prev.kl.hi.is_finite()
                && div.kl.lo > prev.kl.hi
        });
        let d = div.kl.upper;
        eta_product *= eta;
        // (f64::max would turn a NaN D_0 into 0); a contracted value ≤ 0 gives no bound
        let kl_contracted = label0 + eta_product * if d0 < 0.0 { 0.0 } else { d0 };
        let kl_ratio = match rows.last() {
            Some(prev) => {
                let (now, before) = (input_part(&div.kl), input_part(&prev.kl));
                if before > 0.0 && now.is_finite() {
                    now / before
                } else {
                    f64::NAN
                }
            }
            None => f64::NAN,
        };
        let ratio = rows.last().map_or(RatioInterval::none(), |prev| {
            ratio_interval(&div.kl, &prev.kl, kl_ratio, 1.0 - alpha)
        });
        let kl_ratio_vs_eta = if ratio.hi < eta {
            -1.0
        } else if ratio.lo > eta {
            1.0
        } else if ratio.lo.is_nan() || ratio.hi.is_nan() {
            f64::NAN
        } else {
            0.0
        };
        // the upper end of the W1 interval; W1 ≥ 0, so an upper end ≤ 0 gives no bound
        let w1_hi = if div.w1.upper > 0.0 {
            div.w1.upper
        } else {
            f64::NAN
        };
        let (kl_b, w1_b) = (
            kl_bound(d, SIGMA_ZERO_ONE),
            w1_bound(rho, w1_hi, clip, div.w1.label_term),
        );
        rows.push(LayerRow {
            layer: info.index,
            name: default_layer_name(info),
            width: info.width,
            role: info.role.name().into(),
            activation: info.activation.name().into(),
            regularizer: info.regularizer.describe(),
            rank: div.rank,
            kl_bound: kl_b,
            kl_bound_ce: kl_bound(d, clip / 2.0),
            kl_vacuous: kl_b >= 1.0,
            w1_bound: w1_b,
            w1_vacuous: w1_b >= clip,
            lipschitz: rho,
            lipschitz_local: rho_local,
            lipschitz_cp: f64::NAN,
            lipschitz_box: f64::NAN,
            lipschitz_cert: f64::NAN,
            w1_bound_cert: f64::NAN,
            w1_debiased: f64::NAN,
            w1_debiased_cert: f64::NAN,
            w1_debiased_local: f64::NAN,
            w1_bound_local: w1_bound(rho_local, w1_hi, clip, div.w1.label_term),
            eta,
            eta_product,
            kl_contracted,
            kl_contracted_bound: kl_bound(kl_contracted, SIGMA_ZERO_ONE),
            kl_ratio,
            kl_ratio_lo: ratio.lo,
            kl_ratio_hi: ratio.hi,
            kl_ratio_method: ratio.method.into(),
            kl_ratio_vs_eta,
            kl: div.kl,
            kl_why: div.kl_why,
            w1: div.w1,
            kl_rise,
            mi_ty: div.mi_ty,
            mi_xt: div.mi_xt,
        });
    }
    let resolved_only = |resolved: bool, v: f64| if resolved { v } else { f64::NAN };
    Bounds {
        funnel_layer: argmin(
            rows.iter()
                .map(|r| resolved_only(r.w1.resolved, r.w1_bound)),
        ),
        funnel_layer_local: argmin(
            rows.iter()
                .map(|r| resolved_only(r.w1.resolved, r.w1_bound_local)),
        ),
        w1_min_layer: argmin(rows.iter().map(|r| {
            if r.w1.error.is_some() {
                f64::NAN
            } else {
                r.w1.value
            }
        })),
        kl_best_layer: argmin(
            rows.iter()
                .map(|r| resolved_only(r.kl.resolved, r.kl_bound)),
        ),
        kl_best_layer_any: argmin(rows.iter().map(|r| r.kl_bound)),
        funnel_layer_any: argmin(rows.iter().map(|r| r.w1_bound)),
        funnel_layer_cert: None,
        funnel_layer_cert_any: None,
        funnel_layer_debiased: None,
        funnel_layer_debiased_cert: None,
        funnel_layer_debiased_local: None,
        rows,
    }
}

/// Adds the certified constants ([`crate::certified`]) to assembled bounds: per layer ρ^CP,
/// ρ^box, ρ^cert (NaN where unknown), the W1 bound under ρ^cert (built as `w1_bound`: from
/// the simultaneous upper end of W_l, plus c·TV), the debiased curves ρ·(W_l − null) under the
/// product, certified and empirical constants, and the argmin of each curve.
///
/// The argmin of W_l alone is not invariant to rescaling a layer (T_l → c·T_l scales W_l by c),
/// while ρ_l·W_l is (ρ_l scales by 1/c): only the weighted curves locate a funnel.
pub fn add_certified(bounds: &mut Bounds, cp: &[f64], boxed: &[f64], cert: &[f64], clip: f64) {
    let n = bounds.rows.len();
    assert!(
        cp.len() == n && boxed.len() == n && cert.len() == n,
        "one constant per layer"
    );
    for (((r, &cp), &bx), &ct) in bounds.rows.iter_mut().zip(cp).zip(boxed).zip(cert) {
        r.lipschitz_cp = cp;
        r.lipschitz_box = bx;
        r.lipschitz_cert = ct;
        let w1_hi = if r.w1.upper > 0.0 {
            r.w1.upper
        } else {
            f64::NAN
        };
        r.w1_bound_cert = w1_bound(ct, w1_hi, clip, r.w1.label_term);
        let excess = if r.w1.error.is_some() {
            f64::NAN
        } else {
            r.w1.excess
        };
        r.w1_debiased = r.lipschitz * excess;
        r.w1_debiased_cert = ct * excess;
        r.w1_debiased_local = r.lipschitz_local * excess;
    }
    let rows = &bounds.rows;
    bounds.funnel_layer_cert = argmin(rows.iter().map(|r| {
        if r.w1.resolved {
            r.w1_bound_cert
        } else {
            f64::NAN
        }
    }));
    bounds.funnel_layer_cert_any = argmin(rows.iter().map(|r| r.w1_bound_cert));
    bounds.funnel_layer_debiased = argmin(rows.iter().map(|r| r.w1_debiased));
    bounds.funnel_layer_debiased_cert = argmin(rows.iter().map(|r| r.w1_debiased_cert));
    bounds.funnel_layer_debiased_local = argmin(rows.iter().map(|r| r.w1_debiased_local));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(index: usize) -> LayerInfo {
        LayerInfo {
            index,
            width: 4,
            role: funnel_model::LayerRole::Hidden,
            activation: funnel_model::Activation::Relu,
            regularizer: funnel_model::Regularizer::None,
        }
    }

    /// An estimate whose simultaneous upper end comes out at `hi`: se = 0 (so t·se = 0) and
    /// the value/excess at max(value, hi) — only `hi` matters to the bounds.
    fn div(estimator: &str, value: f64, lo: f64, hi: f64) -> LayerDivergence {
        let mut kl = Estimate::failed(estimator.into(), crate::Bias::Estimate, String::new());
        (kl.value, kl.lo, kl.hi, kl.error) = (value, lo, hi, None);
        (kl.se, kl.resamples, kl.excess, kl.null_sd) = (0.0, 10, hi, 0.0);
        let mut w1 = kl.clone();
        w1.label_term = 0.0;
        LayerDivergence {
            kl,
            w1,
            rank: 4,
            kl_why: String::new(),
            mi_ty: None,
            mi_xt: None,
        }
    }

    #[test]
    fn a_kl_rise_is_flagged_only_between_layers_of_the_same_estimator() {
        let layers: Vec<LayerInfo> = (0..4).map(layer).collect();
        let divs = vec![
            div("knn(k=5)", 0.1, 0.05, 0.15),
            div("knn(k=5)", 0.5, 0.4, 0.6), // above the previous interval: a rise
            div("smoothed(β=1)", 2.0, 1.9, 2.1), // higher, but another estimator
            div("smoothed(β=1)", 2.05, 1.95, 2.2), // overlapping intervals
        ];
        let b = assemble(
            &layers,
            divs,
            &[1.0; 4],
            &[f64::NAN; 4],
            5.0,
            Stochastic::Active,
            0.05,
        );
        let rises: Vec<bool> = b.rows.iter().map(|r| r.kl_rise).collect();
        assert_eq!(rises, [false, true, false, false]);
    }

    /// η, Π η, the contracted bound and the measured ratio on hand-made numbers: dropout
    /// p = 0.5 on widths 2 and 1 gives η = 3/4 and 1/2; D_0 = 0.4 with label term 0.1.
    #[test]
    fn contraction_columns_follow_the_sdpi_formulas() {
        let widths = [3, 2, 1, 2];
        let layers: Vec<LayerInfo> = widths
            .iter()
            .enumerate()
            .map(|(index, &width)| LayerInfo {
                index,
                width,
                role: if index == 0 {
                    funnel_model::LayerRole::Input
                } else if index == 3 {
                    funnel_model::LayerRole::Logits
                } else {
                    funnel_model::LayerRole::Hidden
                },
                activation: funnel_model::Activation::Relu,
                regularizer: if index == 1 || index == 2 {
                    funnel_model::Regularizer::Dropout { p: 0.5 }
                } else {
                    funnel_model::Regularizer::None
                },
            })
            .collect();
        let mut divs = vec![
            div("knn", 0.4, 0.3, 0.5),
            div("knn", 0.25, 0.2, 0.3),
            div("knn", 0.1, 0.05, 0.15),
            div("knn", 0.05, 0.0, 0.1),
        ];
        for d in &mut divs {
            d.kl.label_term = 0.1;
        }
        let b = assemble(
            &layers,
            divs.clone(),
            &[1.0; 4],
            &[1.0; 4],
            5.0,
            Stochastic::Active,
            0.05,
        );
        let eta: Vec<f64> = b.rows.iter().map(|r| r.eta).collect();
        assert_eq!(eta, [1.0, 0.75, 0.5, 1.0]);
        let prod: Vec<f64> = b.rows.iter().map(|r| r.eta_product).collect();
        assert_eq!(prod, [1.0, 0.75, 0.375, 0.375]);
        // label 0.1 + Π η · (0.5 − 0.1), from the upper end of D_0's interval
        let contracted: Vec<f64> = b.rows.iter().map(|r| r.kl_contracted).collect();
        for (c, want) in contracted.iter().zip([0.5, 0.4, 0.25, 0.25]) {
            assert!((c - want).abs() < 1e-12, "{c} vs {want}");
        }
        assert!((b.rows[1].kl_contracted_bound - (0.4f64 / 2.0).sqrt()).abs() < 1e-12);
        // (0.25 − 0.1)/(0.4 − 0.1) = 0.5, (0.1 − 0.1)/(0.15) = 0, then the previous part is 0
        assert!(b.rows[0].kl_ratio.is_nan());
        assert!((b.rows[1].kl_ratio - 0.5).abs() < 1e-12);
        assert_eq!(b.rows[2].kl_ratio, 0.0);
        assert!(b.rows[3].kl_ratio.is_nan());
        // measured with stochastic layers off, the network is deterministic: no contraction
        let off = assemble(
            &layers,
            divs,
            &[1.0; 4],
            &[1.0; 4],
            5.0,
            Stochastic::Off,
            0.05,
        );
        assert!(off
            .rows
            .iter()
            .all(|r| r.eta == 1.0 && r.eta_product == 1.0));
    }

    #[test]
    fn bound_formulas() {
        // 0-1 loss: sqrt(2·¼·D) = sqrt(D/2)
        assert!((kl_bound(0.08, SIGMA_ZERO_ONE) - 0.2).abs() < 1e-12);
        // clipped CE at c = 4: σ = 2, sqrt(8·D)
        assert!((kl_bound(0.5, 2.0) - 2.0).abs() < 1e-12);
        // an upper end ≤ 0 gives no bound, never a clipped 0
        assert!(kl_bound(-0.3, 0.5).is_nan());
        assert!(kl_bound(0.0, 0.5).is_nan());
        assert!(kl_bound(f64::NAN, 0.5).is_nan());
        assert!((w1_bound(2.0, 0.25, 5.0, 0.01) - 0.55).abs() < 1e-12);
        assert_eq!(argmin([3.0, f64::NAN, 1.0, 2.0].into_iter()), Some(2));
        assert_eq!(argmin([f64::NAN].into_iter()), None);
    }

    #[test]
    fn holm_steps_down_and_stops_at_the_first_failure() {
        // m = 4 finite: thresholds 0.0125, 0.0167, 0.025, 0.05
        let p = [0.01, 0.04, f64::NAN, 0.015, 0.03];
        assert_eq!(holm(&p, 0.05), [true, false, false, true, false]);
        // m = 2: 0.03 > 0.025 stops at once, although 0.03 < 0.05
        assert_eq!(holm(&[0.03, 0.03], 0.05), [false, false]);
        assert_eq!(holm(&[0.02, 0.01], 0.05), [true, true]);
    }

    /// Bounds come from the simultaneous upper end, the headline only from resolved layers,
    /// and a layer whose interval lies below 0 has no bound (never a clipped 0).
    #[test]
    fn headline_layers_are_resolved_and_bounds_use_the_upper_end() {
        let layers: Vec<LayerInfo> = (0..3).map(layer).collect();
        let mut divs = vec![
            div("knn", 0.02, 0.01, 0.03),
            div("knn", -0.05, -0.08, -0.01),
            div("knn", 0.5, 0.4, 0.6),
        ];
        for (d, p) in divs.iter_mut().zip([0.5, 0.9, 0.01]) {
            d.kl.p_value = p;
            d.kl.null_sd = 0.01;
            d.kl.permutations = 4;
            d.kl.excess = d.kl.value;
            d.kl.points_train = 100;
            d.w1.p_value = p;
        }
        let b = assemble(
            &layers,
            divs.clone(),
            &[1.0; 3],
            &[f64::NAN; 3],
            5.0,
            Stochastic::Active,
            0.05,
        );
        // se = 0 and sd_null = 0.01 over B = 4 permutations: the upper end is
        // max(value, excess + t·0.01/√4), t the one-sided Student quantile at 1 − α/3
        let t9 = statrs::distribution::StudentsT::new(0.0, 1.0, 9.0).unwrap();
        let t9 = statrs::distribution::ContinuousCDF::inverse_cdf(&t9, 1.0 - 0.05 / 3.0);
        assert!((b.rows[0].kl.upper - (0.02 + t9 * 0.005)).abs() < 1e-12);
        assert!((b.rows[0].kl_bound - (b.rows[0].kl.upper / 2.0).sqrt()).abs() < 1e-12);
        assert!(b.rows[1].kl_bound.is_nan() && b.rows[1].kl_bound_ce.is_nan());
        assert!(b.rows.iter().all(|r| r.kl_bound != 0.0));
        let resolved: Vec<bool> = b.rows.iter().map(|r| r.kl.resolved).collect();
        assert_eq!(resolved, [false, false, true]);
        // layer 0 has the smaller bound but is not resolved: the headline is layer 2
        assert_eq!(b.kl_best_layer, Some(2));
        assert_eq!(b.funnel_layer, Some(2));
        // resolution z_{1−0.05/3}·0.01, and the points that would resolve 0.02
        let z = normal_upper_quantile(0.05 / 3.0);
        assert!((b.rows[0].kl.resolution - z * 0.01).abs() < 1e-12);
        let need = (100.0 * (z * 0.01 / 0.02f64).powi(2)).ceil();
        assert_eq!(b.rows[0].kl.points_needed, need);
        assert!(b.rows[1].kl.points_needed.is_nan()); // excess ≤ 0: nothing to extrapolate
                                                      // W1 bound ρ·hi + c·TV = 0.6; vacuous at c = 5 only when ≥ 5
        assert!((b.rows[2].w1_bound - 0.6).abs() < 1e-12);
        assert!(!b.rows[2].w1_vacuous);
        // with a spread, the upper end is max(value + t·se, excess + t·se_excess), t at 1 − α/3
        for d in &mut divs {
            d.kl.se = 0.01;
        }
        let b = assemble(
            &layers,
            divs,
            &[1.0; 3],
            &[f64::NAN; 3],
            5.0,
            Stochastic::Active,
            0.05,
        );
        let t = statrs::distribution::StudentsT::new(0.0, 1.0, 9.0).unwrap();
        let t = statrs::distribution::ContinuousCDF::inverse_cdf(&t, 1.0 - 0.05 / 3.0);
        // the null-corrected reading carries the null mean's error too: se² + sd_null²/B
        let up = 0.5 + t * (0.01f64 * 0.01 + 0.01 * 0.01 / 4.0).sqrt();
        assert!((b.rows[2].kl.upper - up).abs() < 1e-12);
        assert!((b.rows[2].kl_bound - (up / 2.0).sqrt()).abs() < 1e-12);
    }
}
