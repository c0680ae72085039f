//! The findings under the table: headline bounds, resolved layers, contraction and the
//! linear-Gaussian closed forms, in sentences.

use funnel_metrics::{Estimate, LayerRow};

use super::table::*;
use crate::results::*;
use crate::text::*;

/// Sentences a person can read: where the bounds are tightest among resolved layers, how they
/// compare to the gap, and what each unresolved measurement would need.
pub fn findings(summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(gap), Some(bounds)) = (&summary.gap, &summary.bounds) else {
        return out;
    };
    let rows = &summary.layers;
    let clip = summary.measurement.as_ref().map_or(f64::NAN, |m| m.ce_clip);
    let alpha = summary
        .measurement
        .as_ref()
        .map_or(0.05, |m| 1.0 - m.confidence);
    let perms = summary.measurement.as_ref().map_or(0, |m| m.permutations);
    let tested = |pick: fn(&LayerRow) -> &Estimate| {
        rows.iter().filter(|r| pick(r).p_value.is_finite()).count()
    };
    let (kl_m, w1_m) = (tested(|r| &r.kl), tested(|r| &r.w1));
    let rule = |m: usize| {
        format!(
            "permutation p-value below Holm's threshold, α = {} over {m} layers (separately for KL, W1 and I(T;Y)), {perms} permutations",
            num(alpha)
        )
    };
    let m = kl_m.max(w1_m);
    if perms > 0 && ((1 + perms) as f64) * alpha < m.max(1) as f64 * (1.0 - 1e-9) {
        out.push(format!(
            "With {perms} permutations the smallest p-value is 1/{}, above Holm's first threshold α/{m} = {}: no layer can resolve. Raise metrics.permutations to at least {}.",
            perms + 1,
            num(alpha / m.max(1) as f64),
            (m as f64 / alpha).ceil() as usize - 1
        ));
    }
    match bounds.kl.layer {
        Some(l) => out.push(format!(
            "The tightest KL bound among resolved layers ({}) is at layer {l}: {} on the 0-1 loss ({}; measured 0-1 gap {}){}, {} on the cross-entropy clipped at {}.",
            rule(kl_m),
            num(bounds.kl.zero_one),
            ratio_text(bounds.kl.ratio_zero_one),
            num(gap.zero_one),
            if bounds.kl.zero_one >= 1.0 { " — vacuous: at least the loss's range 1" } else { "" },
            num(bounds.kl.cross_entropy_clipped),
            num(clip),
        )),
        None => out.push(format!(
            "No layer's KL divergence is resolved ({}): at these sizes the estimates are not distinguished from the size-matched null, so no layer locates a train/test difference. Resolution (smallest excess the first Holm step could resolve, nats): {}.{}",
            rule(kl_m),
            resolutions(rows, |r| &r.kl),
            what_it_takes(rows, |r| &r.kl, false)
        )),
    }
    if let Some(l) = bounds.kl.layer_any.filter(|&l| Some(l) != bounds.kl.layer) {
        out.push(format!(
            "Over every layer, resolved or not, the tightest KL bound is {} at layer {l} (0-1 loss; {}): every bound uses its layer's upper end simultaneous over the layers, so it holds whether or not the layer resolves — an upper bound on a divergence that may be 0.",
            num(bounds.kl.zero_one_any),
            ratio_text(ratio(bounds.kl.zero_one_any, gap.zero_one)),
        ));
    }
    match bounds.w1.layer {
        Some(l) => out.push(format!(
            "Among resolved layers the W1 bound is smallest at layer {l}, the generalization funnel: {} on the cross-entropy clipped at {} ({}; measured gap {}){}.",
            num(bounds.w1.cross_entropy_clipped),
            num(clip),
            ratio_text(bounds.w1.ratio_cross_entropy_clipped),
            num(gap.cross_entropy_clipped),
            if bounds.w1.cross_entropy_clipped >= clip { " — vacuous: at least the loss's range c" } else { "" },
        )),
        None => out.push(format!(
            "No layer's W1 distance is resolved ({}): at these sizes the estimates are not distinguished from the size-matched null (the finite-sample floor), so there is no resolved funnel layer. Resolution: {}.{}",
            rule(w1_m),
            resolutions(rows, |r| &r.w1),
            what_it_takes(rows, |r| &r.w1, true)
        )),
    }
    if let Some(l) = bounds.w1.layer_any.filter(|&l| Some(l) != bounds.w1.layer) {
        out.push(format!(
            "Over every layer, resolved or not, the tightest W1 bound is {} at layer {l} (clipped cross-entropy; {}{}).",
            num(bounds.w1.cross_entropy_clipped_any),
            ratio_text(ratio(bounds.w1.cross_entropy_clipped_any, gap.cross_entropy_clipped)),
            if bounds.w1.cross_entropy_clipped_any >= clip { "; vacuous" } else { "" },
        ));
    }
    let kl_res: Vec<String> = rows
        .iter()
        .filter(|r| r.kl.resolved)
        .map(|r| r.layer.to_string())
        .collect();
    let w1_res: Vec<String> = rows
        .iter()
        .filter(|r| r.w1.resolved)
        .map(|r| r.layer.to_string())
        .collect();
    if !kl_res.is_empty() || !w1_res.is_empty() {
        out.push(format!(
            "Resolved layers (marked * in the p columns): KL {}; W1 {}. Elsewhere the difference is not distinguished from the null at Holm level α with these permutations and points.",
            if kl_res.is_empty() { "none".into() } else { kl_res.join(", ") },
            if w1_res.is_empty() { "none".into() } else { w1_res.join(", ") },
        ));
    }
    if rows.first().is_some_and(|r| r.kl.resolved || r.w1.resolved) {
        out.push(
            "Layer 0 (the input) resolves. When train and test are drawn from the same distribution its train-vs-test divergence is 0 by construction, so this is a false positive (Holm keeps their rate at α per run and divergence); it is a finding only when the test data comes from another distribution (data.test_shift, funnel measure on shifted data).".into(),
        );
    }
    if let (Some(l), Some(cert)) = (bounds.w1.w1_min_layer, bounds.w1.layer) {
        if l != cert {
            out.push(format!(
                "The W1 distance W_l itself is smallest at layer {l}; weighted by the Lipschitz constants the bound is smallest at layer {cert}."
            ));
        }
    }
    if let (Some(l), Some(cert)) = (bounds.w1.layer_local, bounds.w1.layer) {
        if l != cert {
            out.push(format!(
                "With the empirical local Lipschitz constants ρ̂_l the W1 curve is smallest at layer {l} instead (not a certified bound: ρ̂_l is a lower estimate of the true constant)."
            ));
        }
    }
    let below: Vec<&str> = [
        ("KL", bounds.kl.ratio_zero_one),
        ("W1", bounds.w1.ratio_cross_entropy_clipped),
    ]
    .iter()
    .filter(|(_, r)| r.is_some_and(|r| r < 1.0))
    .map(|(n, _)| *n)
    .collect();
    if !below.is_empty() {
        out.push(format!(
            "The {} bound is below this run's measured gap. The bound is on the expected gap: one run's gap can exceed it; compare with the mean gap over seeds (funnel sweep).",
            below.join(" and ")
        ));
    }
    if rows.iter().any(|r| r.kl.estimator.starts_with("knn(")) {
        out.push(format!("{KNN_COVERAGE_NOTE}."));
    }
    let rises: Vec<String> = rows
        .iter()
        .filter(|r| r.kl_rise)
        .map(|r| r.layer.to_string())
        .collect();
    if !rises.is_empty() {
        out.push(format!(
            "The KL estimate rises beyond its interval at layer(s) {} (marked `!`). Data processing forbids this for the true divergence, so it is an estimator artefact, not a finding.",
            rises.join(", ")
        ));
    }
    out
}

/// A contraction coefficient: `1 − 1.00e-64` rather than a rounded `1.00` when it is within
/// 10⁻³ of 1 but not 1.
pub fn coefficient(eta: f64) -> String {
    if eta < 1.0 && 1.0 - eta < 1e-3 {
        format!("1 − {}", num(1.0 - eta))
    } else {
        num(eta)
    }
}

/// The SDPI table of `report.md` (DESIGN §2.6): analytic η_l and Π η beside the measured
/// contraction of the KL estimate's input-dependent part.
pub fn contraction_section(rows: &[LayerRow]) -> String {
    let mut s = String::from("## SDPI contraction\n\n");
    if !rows.iter().any(|r| r.eta < 1.0) {
        s.push_str(
            "No layer contracts as measured (η_l = 1 everywhere: no stochastic layer, stochastic layers off at \
             measurement, or Gaussian noise after an unbounded activation), so the contracted bound is D_0 at every layer.\n\n",
        );
    }
    s.push_str("| layer | regularizer | η_l | Π η | D_l − KL(π) | measured D_l / D_{l−1} [interval] | vs η_l | contracted D_l bound | contracted KL bound (0-1) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let part = if r.kl.error.is_some() {
            f64::NAN
        } else {
            r.kl.value - r.kl.label_term
        };
        let ratio = if r.kl_ratio_lo.is_nan() && r.kl_ratio_hi.is_nan() {
            num(r.kl_ratio)
        } else {
            let how = if r.kl_ratio_method == "paired" {
                ""
            } else {
                " (c)"
            };
            format!(
                "{} [{}, {}]{how}",
                num(r.kl_ratio),
                num(r.kl_ratio_lo),
                num(r.kl_ratio_hi)
            )
        };
        let v = r.kl_ratio_vs_eta;
        let verdict = if v < 0.0 {
            "below η"
        } else if v > 0.0 {
            "**above η**"
        } else if v == 0.0 {
            "contains η"
        } else {
            "—"
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.layer,
            r.regularizer,
            coefficient(r.eta),
            coefficient(r.eta_product),
            num(part),
            ratio,
            verdict,
            num(r.kl_contracted),
            num(r.kl_contracted_bound)
        ));
    }
    s.push_str(
        "\nη_l bounds the KL contraction of the channel T_{l−1} → T_l over all weights (Dobrushin's coefficient): \
         1 − p^d for Dropout on d units, 1 − p^(d_in·d_out) for DropConnect, erf(a√d/(β√2)) for noise N(0, β²) after an \
         activation with range half-width a. The contracted bound is KL(π_tr‖π_te) + Π_{k≤l} η_k·(D_0 − KL(π_tr‖π_te)) \
         from the layer-0 estimate; the label term does not contract. The measured ratio divides consecutive \
         input-dependent estimates (D_l − KL(π)), at every layer including the logits; it is noisy wherever the estimates are within their null baseline. \
         Its interval comes from the same half-samples at both layers (paired: the same examples in each draw), spread of the \
         per-draw ratio around its median re-centred on the measured ratio, spanning the raw and the null-corrected readings; \
         (c) marks the conservative quotient of the two layers' intervals where the draws were not paired. `inf`: the previous \
         layer's part can be ≤ 0, so the ratio is unbounded above. \"vs η_l\": below η (the whole interval below: the layer \
         contracts more than η requires), contains η, or above η (the whole interval above η: the measured contraction is weaker \
         than the SDPI allows — an estimator problem or a violation). Half-sample spreads of biased estimators describe their \
         noise, not their bias: the interval's coverage is not established.\n\n",
    );
    s
}

/// The closed forms of a class-mean linear DNN beside the estimates (DESIGN §2.7).
pub fn linear_gaussian_section(lg: &LinearGaussianSummary, rows: &[LayerRow]) -> String {
    let mut s = format!(
        "## Closed forms (class-mean linear DNN, DESIGN §2.7)\n\nn = {} training examples, s = {}, ‖μ̂ − μ‖ = {}.\n\n",
        lg.n,
        num(lg.noise_std),
        num(lg.mean_error)
    );
    s.push_str("| layer | rank r_l | ‖A_l‖_F | ‖Π_l(μ̂−μ)‖ | KL estimate [CI] | KL null | D_l this run | E D_l | W1 estimate [CI] | W1 null | W2 bound this run | sqrt(E W2²) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for f in &lg.layers {
        let row = rows.iter().find(|r| r.layer == f.layer);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            f.layer,
            f.rank,
            num(f.frobenius),
            num(f.projected_error),
            row.map_or("—".into(), |r| with_ci(&r.kl)),
            row.map_or("—".into(), |r| num(r.kl.null)),
            num(f.kl_per_run),
            if f.readout {
                format!(
                    "{} (read-out: data-dependent direction, 2-D quadrature)",
                    num(f.kl_expected)
                )
            } else {
                num(f.kl_expected)
            },
            row.map_or("—".into(), |r| with_ci(&r.w1)),
            row.map_or("—".into(), |r| num(r.w1.null)),
            num(f.w2_per_run),
            num(f.w2_expected),
        ));
    }
    s.push_str(
        "\nD_l = KL(P_{T_l,Y | μ̂} of a training example ‖ P_{T_l,Y} of a fresh one) = (r/2)·[−1/n − ln(1 − 1/n)] + ‖Π_l(μ̂ − μ)‖²/(2s²): \
         it depends on the layer only through the rank r_l and the projection of μ̂'s error. Averaged over training sets, \
         E D_l = (r_l/2)·ln(n/(n−1)) at layers that do not depend on the data; the read-out's direction u = Π_M μ̂/‖Π_M μ̂‖ \
         does, so there E D_L = ½[−1/n − ln(1 − 1/n)] + E[(uᵀ(μ̂ − μ))²]/(2s²), computed by a 2-D quadrature over the law of \
         μ̂ in the hidden layers' row space (`funnel_train::readout`). The W2 bound \
         sqrt(‖A_l(μ̂ − μ)‖² + s²(1 − sqrt(1 − 1/n))²‖A_l‖_F²) bounds W1 of the same pair and grows with ‖A_l‖_F. \
         The estimates compare the train cloud with the test cloud. With hidden layers that do not depend on the data, \
         the train cloud is an i.i.d. sample of the same law as the test cloud, so a bias-corrected estimator targets 0 there. \
         The closed form, by contrast, conditions on μ̂. Both are O(r/n): compare the closed form with the null baseline, not only with the estimate.\n\n",
    );
    s
}
