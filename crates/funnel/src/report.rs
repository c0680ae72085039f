//! What a run prints and writes for people: `summary.json`, `report.md` and the terminal table.

use std::path::PathBuf;

use funnel_metrics::{Bias, Estimate, LayerRow};
use funnel_train::{Gap, Losses};
use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

#[derive(Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    /// Why the run failed (e.g. diverged training).
    pub reason: Option<String>,
    pub name: String,
    pub run_id: String,
    pub seed: u64,
    pub backend: String,
    /// The burn device that computed the run, as burn names it (`NdArray(Cpu)`); absent in
    /// summaries written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    pub funnel_version: String,
    pub created: String,
    pub data: DataSummary,
    /// `funnel measure` only: the run whose model was measured, and the data it was measured on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSummary>,
    pub model: ModelSummary,
    pub training: TrainingSummary,
    /// Losses of the trained network in the measurement mode.
    pub losses: Option<LossPair>,
    /// Test − train in each loss.
    pub gap: Option<Gap>,
    /// argmin over layers of the W1 bound.
    pub funnel_layer: Option<usize>,
    pub bounds: Option<BoundsSummary>,
    pub measurement: Option<MeasurementSummary>,
    /// Every layer: both divergences with estimator, points, null and CI, and the bounds.
    pub layers: Vec<LayerRow>,
    pub timings: Timings,
    /// `train.algorithm = "class_mean"` on the binary Gaussian mixture: the closed forms of
    /// every layer (DESIGN §2.7), to set beside the estimates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_gaussian: Option<LinearGaussianSummary>,
    /// Why the figures under `plots/` could not be drawn, when they could not (the run's
    /// numbers are kept all the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plots_error: Option<String>,
}

impl Summary {
    /// A summary before measurement: status `ok`, no source, no results yet. `run` and
    /// `measure` fill in what differs (failure, source) and the tail fills in the results.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        name: &str,
        run_id: &str,
        seed: u64,
        backend: &str,
        device: String,
        data: DataSummary,
        model: ModelSummary,
        training: TrainingSummary,
        timings: Timings,
    ) -> Summary {
        Summary {
            status: Status::Ok,
            reason: None,
            name: name.into(),
            run_id: run_id.into(),
            seed,
            backend: backend.into(),
            device,
            funnel_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339(),
            data,
            source: None,
            model,
            training,
            losses: None,
            gap: None,
            funnel_layer: None,
            bounds: None,
            measurement: None,
            layers: Vec::new(),
            timings,
            plots_error: None,
            linear_gaussian: None,
        }
    }
}

/// The closed forms of a class-mean linear DNN (DESIGN §2.7).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearGaussianSummary {
    /// Training examples n.
    pub n: usize,
    /// The data's noise std s.
    pub noise_std: f64,
    /// ‖μ̂ − μ‖ of this run.
    pub mean_error: f64,
    pub layers: Vec<funnel_train::class_mean::ClosedForm>,
}

impl LinearGaussianSummary {
    pub fn of(model: &funnel_model::Mlp, mu: &[f64], mu_hat: &[f64], s: f64, n: usize) -> Self {
        LinearGaussianSummary {
            n,
            noise_std: s,
            mean_error: mu
                .iter()
                .zip(mu_hat)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt(),
            layers: funnel_train::class_mean::closed_forms(model, mu, mu_hat, s, n),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct DataSummary {
    pub kind: String,
    pub description: String,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub classes: usize,
    pub standardized: bool,
}

/// Where the model of a `funnel measure` comes from and what it was measured against.
#[derive(Serialize, Deserialize)]
pub struct SourceSummary {
    /// The run folder whose `model.bpk` and `config.toml` were used.
    pub run_dir: PathBuf,
    /// The labelled CSV that took the place of the run's test set.
    pub test_file: PathBuf,
    pub model_file: String,
}

#[derive(Serialize, Deserialize)]
pub struct ModelSummary {
    /// Widths of layers 0..=L.
    pub dims: Vec<usize>,
    pub depth: usize,
    pub activation: String,
    pub regularizer: String,
    pub parameters: usize,
}

#[derive(Serialize, Deserialize)]
pub struct TrainingSummary {
    pub algorithm: String,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub lr: f64,
    pub epochs: usize,
    pub epochs_run: usize,
    pub batch_size: usize,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub seconds: f64,
}

impl ModelSummary {
    pub fn of(config: &Config, dims: &[usize], parameters: usize) -> Self {
        ModelSummary {
            dims: dims.to_vec(),
            depth: dims.len() - 1,
            activation: config.model.activation.name().into(),
            regularizer: config.model.regularizer.describe(),
            parameters,
        }
    }
}

impl TrainingSummary {
    pub fn of(config: &Config, epochs_run: usize, seconds: f64) -> Self {
        TrainingSummary {
            algorithm: config.train.algorithm.name().into(),
            lr: config.train.lr,
            epochs: config.train.epochs,
            epochs_run,
            batch_size: config.train.batch_size,
            seconds,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct LossPair {
    pub train: Losses,
    pub test: Losses,
}

#[derive(Serialize, Deserialize)]
pub struct BoundsSummary {
    pub kl: KlBoundSummary,
    pub w1: W1BoundSummary,
}

/// The tightest KL bound over layers, for both losses it covers.
#[derive(Serialize, Deserialize)]
pub struct KlBoundSummary {
    pub layer: Option<usize>,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub zero_one: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped: f64,
    /// bound / measured gap (0-1 loss); absent when the gap is ≤ 0.
    pub ratio_zero_one: Option<f64>,
    /// The tightest bound over every layer, resolved or not (the bounds hold together).
    #[serde(default)]
    pub layer_any: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub zero_one_any: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// The W1 bound at the funnel layer. ρ·W + c·TV bounds the gap of the cross-entropy clipped
/// at c (a ρ-Lipschitz loss in [0, c]); when the label marginals agree (TV = 0) it bounds the
/// plain cross-entropy gap too.
#[derive(Serialize, Deserialize)]
pub struct W1BoundSummary {
    pub layer: Option<usize>,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped: f64,
    /// bound / measured clipped cross-entropy gap; absent when the gap is ≤ 0.
    pub ratio_cross_entropy_clipped: Option<f64>,
    /// argmin_l of ρ̂_l·W_l + c·TV with the empirical local constants (not a certified bound).
    #[serde(default)]
    pub layer_local: Option<usize>,
    /// argmin_l of the W1 estimate W_l alone (no Lipschitz weights).
    #[serde(default)]
    pub w1_min_layer: Option<usize>,
    /// The tightest W1 bound over every layer, resolved or not.
    #[serde(default)]
    pub layer_any: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped_any: f64,
}

#[derive(Serialize, Deserialize)]
pub struct MeasurementSummary {
    pub stochastic_layers: String,
    pub points_train: usize,
    pub points_test: usize,
    pub kl_estimator: String,
    pub w1_estimator: String,
    pub w1_bias: Bias,
    pub bootstrap: usize,
    /// Permutations of the size-matched null.
    #[serde(default)]
    pub permutations: usize,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub confidence: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub ce_clip: f64,
    pub null_baseline: String,
}

#[derive(Serialize, Deserialize, Default)]
pub struct Timings {
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub data_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub train_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub evaluate_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub capture_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub estimate_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub total_s: f64,
}

/// Three significant digits, scientific outside [1e-3, 1e4); `—` for NaN.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "—".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e4).contains(&a) {
        return format!("{x:.2e}");
    }
    let digits = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// `value [lo, hi]`, or `value` alone without an interval.
fn value_ci(value: f64, lo: f64, hi: f64) -> String {
    if lo.is_nan() || hi.is_nan() {
        num(value)
    } else {
        format!("{} [{}, {}]", num(value), num(lo), num(hi))
    }
}

/// The estimate with its interval.
pub fn with_ci(e: &Estimate) -> String {
    value_ci(e.value, e.lo, e.hi)
}

/// The excess (value − null mean) with its interval.
fn excess_ci(e: &Estimate) -> String {
    value_ci(e.excess, e.excess_lo, e.excess_hi)
}

pub fn ratio(bound: f64, gap: f64) -> Option<f64> {
    (gap > 0.0 && bound.is_finite()).then(|| bound / gap)
}

fn ratio_text(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{}× the measured gap", num(r)),
        None => "the measured gap is ≤ 0, so no ratio".into(),
    }
}

/// `p` with a `*` when the layer is resolved (Holm over the layers).
fn p_text(e: &Estimate) -> String {
    if e.p_value.is_nan() {
        return "—".into();
    }
    format!("{}{}", num(e.p_value), if e.resolved { "*" } else { "" })
}

/// A bound with `vacuous` when it is at least the loss's range.
fn bound_text(b: f64, vacuous: bool) -> String {
    if vacuous {
        format!("{} vacuous", num(b))
    } else {
        num(b)
    }
}

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
            } else if bound.is_nan() {
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
        if r.lipschitz.is_nan() && r.w1.error.is_none() {
            out.push(format!(
                "layer {}: no certified Lipschitz constant ρ_l, so no W1 bound",
                r.layer
            ));
        }
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
    for r in rows {
        cells.push(vec![
            format!("{}{}", r.layer, if r.kl_rise { "!" } else { "" }),
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
    let cols = cells[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}", w = *w))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (cols - 1)));
            out.push('\n');
        }
    }
    out
}

/// "layer 0 0.0123, layer 1 0.0456": each tested layer's resolution.
fn resolutions(rows: &[LayerRow], pick: fn(&LayerRow) -> &Estimate) -> String {
    rows.iter()
        .filter(|r| pick(r).resolution.is_finite())
        .map(|r| format!("layer {} {}", r.layer, num(pick(r).resolution)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What it would take to resolve the largest positive excess among unresolved layers
/// (`w1`: the divergence is W1, whose floor in d ≥ 3 does not fall as 1/√n).
fn what_it_takes(rows: &[LayerRow], pick: fn(&LayerRow) -> &Estimate, w1: bool) -> String {
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
const KNN_COVERAGE_NOTE: &str = "kNN KL intervals cover the estimator's spread, not its bias under a real difference: `funnel selftest` measures their coverage below 90% in several regimes (many dimensions, uniform and dropout-like clouds, low-dimensional manifolds in a wider span), and reads 0 correctly where there is no difference";

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
fn coefficient(eta: f64) -> String {
    if eta < 1.0 && 1.0 - eta < 1e-3 {
        format!("1 − {}", num(1.0 - eta))
    } else {
        num(eta)
    }
}

/// The SDPI table of `report.md` (DESIGN §2.6): analytic η_l and Π η beside the measured
/// contraction of the KL estimate's input-dependent part.
fn contraction_section(rows: &[LayerRow]) -> String {
    let mut s = String::from("## SDPI contraction\n\n");
    if !rows.iter().any(|r| r.eta < 1.0) {
        s.push_str(
            "No layer contracts as measured (η_l = 1 everywhere: no stochastic layer, stochastic layers off at \
             measurement, or Gaussian noise after an unbounded activation), so the contracted bound is D_0 at every layer.\n\n",
        );
    }
    s.push_str("| layer | regularizer | η_l | Π η | D_l − KL(π) | measured D_l / D_{l−1} | contracted D_l bound | contracted KL bound (0-1) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let part = if r.kl.error.is_some() {
            f64::NAN
        } else {
            r.kl.value - r.kl.label_term
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.layer,
            r.regularizer,
            coefficient(r.eta),
            coefficient(r.eta_product),
            num(part),
            num(r.kl_ratio),
            num(r.kl_contracted),
            num(r.kl_contracted_bound)
        ));
    }
    s.push_str(
        "\nη_l bounds the KL contraction of the channel T_{l−1} → T_l over all weights (Dobrushin's coefficient): \
         1 − p^d for Dropout on d units, 1 − p^(d_in·d_out) for DropConnect, erf(a√d/(β√2)) for noise N(0, β²) after an \
         activation with range half-width a. The contracted bound is KL(π_tr‖π_te) + Π_{k≤l} η_k·(D_0 − KL(π_tr‖π_te)) \
         from the layer-0 estimate; the label term does not contract. The measured ratio divides consecutive \
         input-dependent estimates (D_l − KL(π)); it is noisy wherever the estimates are within their null baseline.\n\n",
    );
    s
}

/// The closed forms of a class-mean linear DNN beside the estimates (DESIGN §2.7).
fn linear_gaussian_section(lg: &LinearGaussianSummary, rows: &[LayerRow]) -> String {
    let mut s = format!(
        "## Closed forms (class-mean linear DNN, DESIGN §2.7)\n\nn = {} training examples, s = {}, ‖μ̂ − μ‖ = {}.\n\n",
        lg.n,
        num(lg.noise_std),
        num(lg.mean_error)
    );
    s.push_str("| layer | rank r_l | ‖A_l‖_F | ‖Π_l(μ̂−μ)‖ | KL estimate [CI] | KL null | D_l this run | E D_l = (r/2)·ln(n/(n−1)) | W1 estimate [CI] | W1 null | W2 bound this run | sqrt(E W2²) |\n");
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
            num(f.kl_expected),
            row.map_or("—".into(), |r| with_ci(&r.w1)),
            row.map_or("—".into(), |r| num(r.w1.null)),
            num(f.w2_per_run),
            num(f.w2_expected),
        ));
    }
    s.push_str(
        "\nD_l = KL(P_{T_l,Y | μ̂} of a training example ‖ P_{T_l,Y} of a fresh one) = (r/2)·[−1/n − ln(1 − 1/n)] + ‖Π_l(μ̂ − μ)‖²/(2s²): \
         it depends on the layer only through the rank r_l and the projection of μ̂'s error. The W2 bound \
         sqrt(‖A_l(μ̂ − μ)‖² + s²(1 − sqrt(1 − 1/n))²‖A_l‖_F²) bounds W1 of the same pair and grows with ‖A_l‖_F. \
         The estimates compare the train cloud with the test cloud. With hidden layers that do not depend on the data, \
         the train cloud is an i.i.d. sample of the same law as the test cloud, so a bias-corrected estimator targets 0 there. \
         The closed form, by contrast, conditions on μ̂. Both are O(r/n): compare the closed form with the null baseline, not only with the estimate.\n\n",
    );
    s
}

/// `report.md`.
pub fn markdown(summary: &Summary) -> String {
    let mut s = String::new();
    let status = match summary.status {
        Status::Ok => String::new(),
        Status::Failed => format!(
            "\n**This run failed:** {}\n",
            summary.reason.as_deref().unwrap_or("unknown reason")
        ),
    };
    let command = if summary.source.is_some() {
        "measure"
    } else {
        "run"
    };
    s.push_str(&format!(
        "# funnel {command} `{}` — {}\n{status}\n",
        summary.name, summary.run_id
    ));
    if let Some(src) = &summary.source {
        s.push_str(&format!(
            "The trained model of `{}` ({}), measured without retraining against `{}` in place of its test set; \
             the training split, its standardization and every seed are the run's.\n\n",
            src.run_dir.display(),
            src.model_file,
            src.test_file.display()
        ));
    }
    s.push_str("| | |\n|---|---|\n");
    s.push_str(&format!(
        "| data | {} — {} train / {} test examples, {} classes{} |\n",
        summary.data.description,
        summary.data.n_train,
        summary.data.n_test,
        summary.data.classes,
        if summary.data.standardized {
            ", standardized"
        } else {
            ""
        }
    ));
    s.push_str(&format!(
        "| model | {} ({}; {} on hidden layers; {} parameters) |\n",
        summary
            .model
            .dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" → "),
        summary.model.activation,
        summary.model.regularizer,
        summary.model.parameters
    ));
    if summary.training.algorithm == "class_mean" {
        s.push_str(
            "| training | class_mean: seeded random hidden projections, read-out from μ̂ (no gradient steps) |\n",
        );
    } else {
        s.push_str(&format!(
            "| training | {}, lr {}, {} of {} epochs, batch {} ({} s) |\n",
            summary.training.algorithm,
            summary.training.lr,
            summary.training.epochs_run,
            summary.training.epochs,
            summary.training.batch_size,
            num(summary.training.seconds)
        ));
    }
    if let Some(m) = &summary.measurement {
        s.push_str(&format!(
            "| measurement | stochastic layers: {}; KL: {}; W1: {} ({}); {} train / {} test points per layer; {}% interval with se from {} half-samples; null: {} ({} permutations) |\n",
            m.stochastic_layers,
            m.kl_estimator,
            m.w1_estimator,
            match m.w1_bias {
                Bias::Exact => "exact on its subsample",
                Bias::LowerBound => "a lower bound",
                Bias::UpperBound => "an upper bound",
                Bias::Estimate => "an estimate",
            },
            m.points_train,
            m.points_test,
            (m.confidence * 100.0).round(),
            m.bootstrap,
            m.null_baseline,
            m.permutations
        ));
    }
    if summary.device.is_empty() {
        s.push_str(&format!(
            "| backend, seed | {}, {} |\n",
            summary.backend, summary.seed
        ));
    } else {
        s.push_str(&format!(
            "| backend (device), seed | {} ({}), {} |\n",
            summary.backend, summary.device, summary.seed
        ));
    }
    s.push_str(&format!("| funnel | {} |\n\n", summary.funnel_version));

    if let (Some(l), Some(gap)) = (&summary.losses, &summary.gap) {
        let clip = summary.measurement.as_ref().map_or(f64::NAN, |m| m.ce_clip);
        s.push_str("## Measured generalization gap\n\n| loss | train | test | gap (test − train) |\n|---|---|---|---|\n");
        s.push_str(&format!(
            "| 0-1 | {} | {} | {} |\n",
            num(l.train.zero_one),
            num(l.test.zero_one),
            num(gap.zero_one)
        ));
        s.push_str(&format!(
            "| cross-entropy | {} | {} | {} |\n",
            num(l.train.cross_entropy),
            num(l.test.cross_entropy),
            num(gap.cross_entropy)
        ));
        s.push_str(&format!(
            "| cross-entropy clipped at {} | {} | {} | {} |\n\n",
            num(clip),
            num(l.train.cross_entropy_clipped),
            num(l.test.cross_entropy_clipped),
            num(gap.cross_entropy_clipped)
        ));
    }
    if !summary.layers.is_empty() {
        let pct = summary
            .measurement
            .as_ref()
            .map_or(95.0, |m| (m.confidence * 100.0).round());
        s.push_str("## Per layer\n\n");
        s.push_str(&format!(
            "| layer | width | rank | KL [{pct}% CI] | KL null (mean, q95) | KL excess [CI] | p | resolution | KL bound (0-1) | KL bound (clipped CE) | W1 [{pct}% CI] | W1 null (mean, q95) | W1 excess [CI] | p | resolution | ρ_l | W1 bound (clipped CE) | ρ̂_l (local) | ρ̂_l·W_l + c·TV |\n"
        ));
        s.push_str(
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &summary.layers {
            s.push_str(&format!(
                "| {}{} | {} | {} | {} | {}, {} | {} | {} | {} | {} | {} | {} | {}, {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.layer,
                if r.kl_rise { " !" } else { "" },
                r.width,
                r.rank,
                with_ci(&r.kl),
                num(r.kl.null),
                num(r.kl.null_q95),
                excess_ci(&r.kl),
                p_text(&r.kl),
                num(r.kl.resolution),
                bound_text(r.kl_bound, r.kl_vacuous),
                num(r.kl_bound_ce),
                with_ci(&r.w1),
                num(r.w1.null),
                num(r.w1.null_q95),
                excess_ci(&r.w1),
                p_text(&r.w1),
                num(r.w1.resolution),
                num(r.lipschitz),
                bound_text(r.w1_bound, r.w1_vacuous),
                num(r.lipschitz_local),
                num(r.w1_bound_local)
            ));
        }
        s.push_str(
            "\n**Null**: within each class the train and test points are pooled and reassigned at random at the sizes the estimate used \
             (a permutation); the null's mean is the estimator's floor at these sizes, q95 its 95% quantile, and p = (1 + #{null ≥ value})/(1 + permutations). \
             **Excess** = value − null mean, the null-corrected value. A layer is **resolved** (`*`) when p clears Holm's threshold over the layers; \
             its **resolution** z_{1−α/m}·sd(null) is the smallest excess it could resolve at these sizes. \
             **Interval**: [min(value, excess) − t·se, max(value, excess) + t·se], se from half-samples: it spans the raw and the null-corrected readings, \
             because the estimator's bias under the alternative lies between 0 and its bias under the null; its coverage is measured by `funnel selftest`. \
             **Bounds** use a one-sided upper end at 1 − α/m, simultaneous over the m layers (Bonferroni; `kl_upper`, `w1_upper` in `layers.csv`): KL bound (0-1) = sqrt(D^up/2); KL bound (clipped CE) = c·sqrt(D^up/2); W1 bound = ρ_l·W^up + c·TV(π_train, π_test), \
             on the cross-entropy clipped at c (and on the plain cross-entropy when TV = 0), with ρ_l the product of the later layers' \
             operator norms and activation constants (×1/(1−p) for active dropout): a certified constant. A bound at least the loss's range is marked vacuous. \
             ρ̂_l is the largest gradient norm of the loss in T_l at the captured examples, a lower estimate of the true constant; ρ̂_l·W_l is not a certified bound.\n\n",
        );
        let missing = missing_reasons(&summary.layers);
        if !missing.is_empty() {
            s.push_str("Empty cells (—):\n\n");
            for m in missing {
                s.push_str(&format!("- {m}\n"));
            }
            s.push('\n');
        }
    }
    if !summary.layers.is_empty() {
        s.push_str(&contraction_section(&summary.layers));
    }
    if let Some(lg) = &summary.linear_gaussian {
        s.push_str(&linear_gaussian_section(lg, &summary.layers));
    }
    let f = findings(summary);
    if !f.is_empty() {
        s.push_str("## Reading\n\n");
        for line in f {
            s.push_str(&format!("- {line}\n"));
        }
        s.push('\n');
    }
    if !summary.layers.is_empty() {
        s.push_str("## Figures\n\n");
        match &summary.plots_error {
            Some(e) => s.push_str(&format!("The figures could not be drawn: {e}\n\n")),
            None => {
                s.push_str(
                    "![KL and W1 per layer with their intervals and nulls; the bounds against the measured gaps](plots/layers.svg)\n\n",
                );
                if crate::plots::has_information_plane(&summary.layers) {
                    s.push_str("![Information plane: I(X;T_l) against I(T_l;Y)](plots/information_plane.svg)\n\n");
                }
                s.push_str("(PNG versions beside them in `plots/`.)\n\n");
            }
        }
    }
    let notes: Vec<String> = summary
        .layers
        .iter()
        .map(|r| (r.layer, crate::results::row_notes(r)))
        .filter(|(_, n)| !n.is_empty())
        .map(|(l, n)| format!("- layer {l}: {n}"))
        .collect();
    if !notes.is_empty() {
        s.push_str("## Notes\n\n");
        s.push_str(&notes.join("\n"));
        s.push_str("\n\n");
    }
    s.push_str(
        "These numbers are estimates of the bounds' ingredients, not certificates: kNN KL is biased in high \
         dimension and empirical W1 has a sampling floor in wide layers, which the size-matched nulls show. \
         One run's train-cloud vs test-cloud divergence is a per-run proxy of the theorem's D_l (README § What the divergence is); \
         compare bounds with the mean gap over seeds.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_three_significant_digits() {
        assert_eq!(num(0.012345), "0.0123");
        assert_eq!(num(1.23456), "1.23");
        assert_eq!(num(123.456), "123");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(12345.0), "1.23e4");
        assert_eq!(num(0.0001234), "1.23e-4");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "—");
        assert_eq!(num(-0.5), "-0.500");
    }
}

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
