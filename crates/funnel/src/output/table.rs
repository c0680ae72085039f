//! The per-layer table (terminal and report.md), the reasons behind every `—`, and what it
//! would take to resolve a layer.

use funnel_metrics::{Estimate, LayerRow};

use crate::text::*;

/// Why a cell of the table is empty (`—`), one line per empty cell, for the terminal and
/// `report.md`.
pub fn missing_reasons(rows: &[LayerRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        for (what, e, bound) in [("KL", &r.kl, r.kl_bound), ("W1", &r.w1, r.w1_bound)] {
            if let Some(err) = &e.error {
                out.push(format!("layer {} {what}: no value: {err}", r.layer));
                continue;
            }
            if e.resamples < 2 {
                out.push(format!(
                    "layer {} {what}: no interval and so no bound: fewer than 2 half-samples succeeded (metrics.bootstrap)",
                    r.layer
                ));
            } else if bound.is_nan() && !(what == "W1" && r.lipschitz.is_nan()) {
                out.push(format!(
                    "layer {} {what}: no bound: the estimate's upper end ({}) is not above 0 (the estimator reads below zero at these sizes)",
                    r.layer,
                    num(e.upper)
                ));
            }
            if e.permutations == 0 {
                out.push(format!(
                    "layer {} {what}: no null, p-value or excess: metrics.permutations = 0",
                    r.layer
                ));
            }
        }
    }
    // one line for every layer without a Lipschitz constant (a layers file may give none)
    let no_rho: Vec<String> = rows
        .iter()
        .filter(|r| r.lipschitz.is_nan() && r.w1.error.is_none())
        .map(|r| r.layer.to_string())
        .collect();
    if !no_rho.is_empty() {
        out.push(format!(
            "layer{} {}: no Lipschitz constant ρ_l (a layers file gives it as `lipschitz/<layer>`), so no W1 bound",
            if no_rho.len() > 1 { "s" } else { "" },
            no_rho.join(", ")
        ));
    }
    out
}

/// Plain-text table for the terminal.
pub fn table(rows: &[LayerRow], confidence: f64) -> String {
    let pct = (confidence * 100.0).round();
    let header = [
        "layer".to_string(),
        "width".into(),
        format!("KL [{pct}% CI]"),
        "null".into(),
        "excess".into(),
        "p".into(),
        "KL bound".into(),
        format!("W1 [{pct}% CI]"),
        "null".into(),
        "excess".into(),
        "p".into(),
        "ρ_l".into(),
        "W1 bound".into(),
    ];
    let mut cells: Vec<Vec<String>> = vec![header.to_vec()];
    let named = has_own_names(rows);
    for r in rows {
        cells.push(vec![
            format!(
                "{}{}{}",
                r.layer,
                if named {
                    format!(" {}", r.name)
                } else {
                    String::new()
                },
                if r.kl_rise { "!" } else { "" }
            ),
            r.width.to_string(),
            with_ci(&r.kl),
            num(r.kl.null),
            num(r.kl.excess),
            p_text(&r.kl),
            bound_text(r.kl_bound, r.kl_vacuous),
            with_ci(&r.w1),
            num(r.w1.null),
            num(r.w1.excess),
            p_text(&r.w1),
            num(r.lipschitz),
            bound_text(r.w1_bound, r.w1_vacuous),
        ]);
    }
    grid(&cells, if named { &[0] } else { &[] })
}

/// The Lipschitz bracket per layer for the terminal: the empirical ρ̂_l (a lower estimate), the
/// tightest certified ρ_l^cert, the three certified constants it is the minimum of, and the
/// W1 bound under ρ^cert. `None` without certified constants (a layers file without weights).
pub fn lipschitz_table(rows: &[LayerRow]) -> Option<String> {
    if !rows.iter().any(|r| r.lipschitz_cert.is_finite()) {
        return None;
    }
    let mut cells: Vec<Vec<String>> = vec![[
        "layer",
        "ρ̂_l (lower)",
        "ρ_l^cert",
        "product",
        "CP",
        "box",
        "W1 bound (cert)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for r in rows {
        cells.push(vec![
            r.layer.to_string(),
            num(r.lipschitz_local),
            num(r.lipschitz_cert),
            num(r.lipschitz),
            num(r.lipschitz_cp),
            num(r.lipschitz_box),
            num(r.w1_bound_cert),
        ]);
    }
    Some(format!(
        "Lipschitz constants (true ρ_l in [ρ̂_l, ρ_l^cert]; cert = min of product, Combettes–Pesquet, box):\n{}",
        grid(&cells, &[])
    ))
}

/// Whether the layers carry names of their own (a network read from a layers file), which the
/// table then shows beside the index; funnel's own `input`/`hidden<l>`/`logits` are left out.
pub fn has_own_names(rows: &[LayerRow]) -> bool {
    rows.iter().any(|r| {
        let default = match r.role.as_str() {
            "input" => "input".to_string(),
            "logits" => "logits".to_string(),
            _ => format!("hidden{}", r.layer),
        };
        !r.name.is_empty() && r.name != default
    })
}

/// "layer 0 0.0123, layer 1 0.0456": each tested layer's resolution.
pub fn resolutions(rows: &[LayerRow], pick: fn(&LayerRow) -> &Estimate) -> String {
    rows.iter()
        .filter(|r| pick(r).resolution.is_finite())
        .map(|r| format!("layer {} {}", r.layer, num(pick(r).resolution)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What it would take to resolve the largest positive excess among unresolved layers
/// (`w1`: the divergence is W1, whose floor in d ≥ 3 does not fall as 1/√n).
pub fn what_it_takes(rows: &[LayerRow], pick: fn(&LayerRow) -> &Estimate, w1: bool) -> String {
    let unresolved = || {
        rows.iter()
            .filter(|r| !pick(r).resolved && pick(r).excess > 0.0)
    };
    let at_resolution: Vec<String> = unresolved()
        .filter(|r| pick(r).excess >= pick(r).resolution)
        .map(|r| r.layer.to_string())
        .collect();
    let mut out = String::new();
    if !at_resolution.is_empty() {
        out.push_str(&format!(
            " At layer(s) {} the excess is at or above the resolution but the permutation p-value does not clear Holm's threshold: more permutations (a finer p) or more points would settle it.",
            at_resolution.join(", ")
        ));
    }
    match unresolved()
        .filter(|r| pick(r).points_needed.is_finite())
        .max_by(|a, b| pick(a).excess.total_cmp(&pick(b).excess))
    {
        Some(r) => out.push_str(&format!(
            " Hypothetically, if the largest excess below its resolution ({} at layer {}) were the true one, it would take roughly {} points per side to resolve (if the null's spread falls as 1/√n{}).",
            num(pick(r).excess),
            r.layer,
            pick(r).points_needed,
            if w1 { ", which the W1 floor in d ≥ 3 need not" } else { "" }
        )),
        None if at_resolution.is_empty() => out.push_str(
            " No unresolved layer has a positive excess: more points would not resolve what was measured.",
        ),
        None => {}
    }
    out
}

/// The measured coverage of kNN KL intervals where the self-test panel finds them short
/// (`funnel selftest`, experiments/estimator-calibration/selftest.txt).
pub const KNN_COVERAGE_NOTE: &str = "kNN KL intervals cover the estimator's spread, not its bias under a real difference: `funnel selftest` measures their coverage below 90% in several regimes (many dimensions, uniform and dropout-like clouds, low-dimensional manifolds in a wider span), and reads 0 correctly where there is no difference";

/// The KL estimator of every layer in one phrase: its name when all layers share it, else
/// `name: layers a, b; other: layer c` in order of first use (what `auto` chose).
pub fn kl_estimators(rows: &[LayerRow]) -> String {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for r in rows {
        let name = if r.kl_why.is_empty() || r.kl_why == "as configured" {
            r.kl.estimator.clone()
        } else {
            format!("{} ({})", r.kl.estimator, r.kl_why)
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, layers)) => layers.push(r.layer),
            None => groups.push((name, vec![r.layer])),
        }
    }
    if groups.len() == 1 {
        return groups[0].0.clone();
    }
    groups
        .iter()
        .map(|(name, layers)| {
            let list: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
            let word = if layers.len() == 1 { "layer" } else { "layers" };
            format!("{name}: {word} {}", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
