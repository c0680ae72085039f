//! The layer-wise generalization bounds of He & Goldfeld (DESIGN §2.3–§2.5) from estimated
//! divergences and Lipschitz constants.

use funnel_model::LayerInfo;
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
    /// The KL estimate rose above the previous layer's, by the same estimator, by more than
    /// both intervals allow — impossible in theory (data processing), so an estimator artefact.
    pub kl_rise: bool,
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

/// Assembles the per-layer rows. `clip` is the c of the clipped cross-entropy.
pub fn assemble(
    layers: &[LayerInfo],
    divergences: Vec<LayerDivergence>,
    lipschitz: &[f64],
    clip: f64,
) -> Bounds {
    assert_eq!(layers.len(), divergences.len(), "one divergence per layer");
    assert_eq!(
        layers.len(),
        lipschitz.len(),
        "one Lipschitz constant per layer"
    );
    let mut rows: Vec<LayerRow> = Vec::with_capacity(layers.len());
    for ((info, div), &rho) in layers.iter().zip(divergences).zip(lipschitz) {
        // only between layers measured by the same estimator: across estimators (e.g. kNN on
        // the input, smoothed on a noisy layer) the numbers carry different biases
        let kl_rise = rows.last().is_some_and(|prev| {
            prev.kl.estimator == div.kl.estimator
                && div.kl.lo.is_finite()
                && prev.kl.hi.is_finite()
                && div.kl.lo > prev.kl.hi
        });
        let d = div.kl.value;
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
            kl: div.kl,
            w1: div.w1,
            kl_rise,
            mi_ty: div.mi_ty,
            mi_xt: div.mi_xt,
        });
    }
    Bounds {
        funnel_layer: argmin(rows.iter().map(|r| r.w1_bound)),
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
        let b = assemble(&layers, divs, &[1.0; 4], 5.0);
        let rises: Vec<bool> = b.rows.iter().map(|r| r.kl_rise).collect();
        assert_eq!(rises, [false, true, false, false]);
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
