//! The layer-wise generalization bounds of He & Goldfeld (DESIGN §2.3–§2.5) from estimated
//! divergences and Lipschitz constants.

use funnel_model::{LayerInfo, Stochastic};
use serde::{Deserialize, Serialize};

use crate::divergence::{Estimate, LayerDivergence};

/// Sub-Gaussian constant of the 0-1 loss (range 1).
pub const SIGMA_ZERO_ONE: f64 = 0.5;

/// |gen| ≤ sqrt(2σ²·D) for a σ-sub-Gaussian loss (negative estimates count as 0; NaN stays NaN).
pub fn kl_bound(d: f64, sigma: f64) -> f64 {
    if d.is_nan() {
        return f64::NAN; // f64::max would turn NaN into 0
    }
    (2.0 * sigma * sigma * d.max(0.0)).sqrt()
}

/// |gen| ≤ ρ·W + c·TV(π_tr, π_te) for a loss with values in [0, c] that is ρ-Lipschitz in the
/// layer's representation for every label.
pub fn w1_bound(rho: f64, w: f64, c: f64, label_tv: f64) -> f64 {
    rho * w + c * label_tv
}

/// One row of `layers.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRow {
    pub layer: usize,
    pub width: usize,
    pub role: String,
    pub activation: String,
    pub regularizer: String,
    /// Rank of the layer's point cloud (largest per-class span rank).
    pub rank: usize,
    pub kl: Estimate,
    /// sqrt(D/2): the KL bound on the 0-1 loss gap.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub kl_bound: f64,
    /// c·sqrt(D/2): the KL bound on the gap of the cross-entropy clipped at c.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub kl_bound_ce: f64,
    pub w1: Estimate,
    /// ρ_l, the Lipschitz constant of the cross-entropy in this layer's representation.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub lipschitz: f64,
    /// ρ_l·W_l + c·TV: the W1 bound on the cross-entropy gap.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub w1_bound: f64,
    /// ρ̂_l, the empirical local Lipschitz constant: the largest ‖∇_{T_l} CE‖ at the captured
    /// examples — a lower estimate of the true constant, not a certificate.
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub lipschitz_local: f64,
    /// ρ̂_l·W_l + c·TV: the W1 "bound" with the local constant (not a certified bound).
    #[serde(default = "nan", deserialize_with = "crate::nan_if_null")]
    pub w1_bound_local: f64,
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
    /// argmin_l of the KL bound (in theory the last layer; estimates may disagree).
    pub kl_best_layer: Option<usize>,
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
/// were captured (for η).
pub fn assemble(
    layers: &[LayerInfo],
    divergences: Vec<LayerDivergence>,
    lipschitz: &[f64],
    lipschitz_local: &[f64],
    clip: f64,
    mode: Stochastic,
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
    // the input-dependent part of D_0, which the SDPI contracts
    let input_part = |e: &Estimate| {
        if e.error.is_some() {
            f64::NAN
        } else {
            e.value - e.label_term
        }
    };
    let d0 = divergences.first().map_or(f64::NAN, |d| input_part(&d.kl));
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
        let d = div.kl.value;
        eta_product *= eta;
        // (f64::max would turn a NaN D_0 into 0)
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
        rows.push(LayerRow {
            layer: info.index,
            width: info.width,
            role: info.role.name().into(),
            activation: info.activation.name().into(),
            regularizer: info.regularizer.describe(),
            rank: div.rank,
            kl_bound: kl_bound(d, SIGMA_ZERO_ONE),
            kl_bound_ce: kl_bound(d, clip / 2.0),
            w1_bound: w1_bound(rho, div.w1.value, clip, div.w1.label_term),
            lipschitz: rho,
            lipschitz_local: rho_local,
            w1_bound_local: w1_bound(rho_local, div.w1.value, clip, div.w1.label_term),
            eta,
            eta_product,
            kl_contracted,
            kl_contracted_bound: kl_bound(kl_contracted, SIGMA_ZERO_ONE),
            kl_ratio,
            kl: div.kl,
            w1: div.w1,
            kl_rise,
            mi_ty: div.mi_ty,
            mi_xt: div.mi_xt,
        });
    }
    Bounds {
        funnel_layer: argmin(rows.iter().map(|r| r.w1_bound)),
        funnel_layer_local: argmin(rows.iter().map(|r| r.w1_bound_local)),
        w1_min_layer: argmin(rows.iter().map(|r| {
            if r.w1.error.is_some() {
                f64::NAN
            } else {
                r.w1.value
            }
        })),
        kl_best_layer: argmin(rows.iter().map(|r| r.kl_bound)),
        rows,
    }
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

    fn div(estimator: &str, value: f64, lo: f64, hi: f64) -> LayerDivergence {
        let mut kl = Estimate::failed(estimator.into(), crate::Bias::Estimate, String::new());
        (kl.value, kl.lo, kl.hi, kl.error) = (value, lo, hi, None);
        let mut w1 = kl.clone();
        w1.label_term = 0.0;
        LayerDivergence {
            kl,
            w1,
            rank: 4,
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
        );
        let eta: Vec<f64> = b.rows.iter().map(|r| r.eta).collect();
        assert_eq!(eta, [1.0, 0.75, 0.5, 1.0]);
        let prod: Vec<f64> = b.rows.iter().map(|r| r.eta_product).collect();
        assert_eq!(prod, [1.0, 0.75, 0.375, 0.375]);
        // label 0.1 + Π η · (0.4 − 0.1)
        let contracted: Vec<f64> = b.rows.iter().map(|r| r.kl_contracted).collect();
        for (c, want) in contracted.iter().zip([0.4, 0.325, 0.2125, 0.2125]) {
            assert!((c - want).abs() < 1e-12, "{c} vs {want}");
        }
        assert!((b.rows[1].kl_contracted_bound - (0.325f64 / 2.0).sqrt()).abs() < 1e-12);
        // (0.25 − 0.1)/(0.4 − 0.1) = 0.5, (0.1 − 0.1)/(0.15) = 0, then the previous part is 0
        assert!(b.rows[0].kl_ratio.is_nan());
        assert!((b.rows[1].kl_ratio - 0.5).abs() < 1e-12);
        assert_eq!(b.rows[2].kl_ratio, 0.0);
        assert!(b.rows[3].kl_ratio.is_nan());
        // measured with stochastic layers off, the network is deterministic: no contraction
        let off = assemble(&layers, divs, &[1.0; 4], &[1.0; 4], 5.0, Stochastic::Off);
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
        assert_eq!(kl_bound(-0.3, 0.5), 0.0);
        assert!(kl_bound(f64::NAN, 0.5).is_nan());
        assert!((w1_bound(2.0, 0.25, 5.0, 0.01) - 0.55).abs() < 1e-12);
        assert_eq!(argmin([3.0, f64::NAN, 1.0, 2.0].into_iter()), Some(2));
        assert_eq!(argmin([f64::NAN].into_iter()), None);
    }
}
