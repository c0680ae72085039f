//! The part of a measurement that needs only every layer's clouds, shared by the networks
//! funnel trains (`pipeline::measure`) and the layers of any network read from a file
//! (`funnel layers`): per-layer KL and W1 with nulls and intervals (and I(T;Y), I(X;T) when
//! asked), then Holm resolution, the bounds and the summary's headline sections. One code
//! path, so a layers file of a funnel run measures exactly as the run did.

use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_metrics::mi::{input_information, label_information};
use funnel_metrics::{
    add_certified, assemble, layer_divergence, Cloud, LayerContext, LayerDivergence, LayerRow,
    MetricsSpec,
};
use funnel_model::{LayerInfo, Stochastic};
use funnel_train::{Gap, Losses};
use tracing::info;

use crate::output;
use crate::results::*;
use crate::term::bar;

/// What `summary.json` says the null is.
pub const NULL_BASELINE: &str = "size-matched permutation: within each class the train and test points pooled and reassigned at the sizes the estimate used";

/// One layer as the estimators see it.
pub struct LayerInput<'a> {
    pub train: &'a Cloud,
    pub test: &'a Cloud,
    pub context: LayerContext<'a>,
    /// For I(X; T_l): the pre-noise centres (each training example repeated), the noise std β
    /// and the repetitions per example.
    pub xt: Option<(&'a Cloud, f64, usize)>,
}

/// Every layer's divergences, in order, with a progress bar; layer l's random choices come
/// from `derive_seed(seed, "layer-l")`, except the KL half-samples' indices, which every layer
/// draws from `derive_seed(seed, "halves")` (paired across layers).
pub fn divergences(
    inputs: &[LayerInput],
    metrics: &MetricsSpec,
    device: &Device,
    seed: u64,
) -> Vec<LayerDivergence> {
    let pb = bar(
        inputs.len() as u64,
        "estimating {bar:30} {pos}/{len} layers {msg} [{elapsed_precise}]",
    );
    let mut divergences = Vec::with_capacity(inputs.len());
    for (l, input) in inputs.iter().enumerate() {
        pb.set_message(format!(
            "layer {l}: {} and {}",
            metrics.kl_name(),
            metrics.w1_name()
        ));
        let layer_seed = derive_seed(seed, &format!("layer-{l}"));
        // one half-sample index stream for every layer: the KL half-samples of consecutive
        // layers are then the same examples, and their ratio has a paired spread
        let context = LayerContext {
            halves: Some(derive_seed(seed, "halves")),
            ..input.context
        };
        let (tr, te) = (input.train, input.test);
        let mut div = layer_divergence(tr, te, metrics, context, device, layer_seed);
        if metrics.mi {
            div.mi_ty = Some(label_information(tr, context, metrics, device, layer_seed));
            div.mi_xt = input.xt.map(|(centres, beta, group)| {
                input_information(centres, group, beta, metrics, device, layer_seed)
            });
        }
        info!(
            layer = l,
            rank = div.rank,
            kl = div.kl.value,
            kl_null = div.kl.null,
            kl_s = div.kl.seconds,
            w1 = div.w1.value,
            w1_null = div.w1.null,
            w1_s = div.w1.seconds,
            "layer estimated"
        );
        divergences.push(div);
        pb.inc(1);
    }
    pb.finish_and_clear();
    divergences
}

/// What [`conclude`] needs besides the summary.
pub struct Conclusion<'a> {
    pub layers: &'a [LayerInfo],
    pub divergences: Vec<LayerDivergence>,
    /// ρ_l per layer (NaN where unknown: no W1 bound there).
    pub rho: &'a [f64],
    pub rho_local: &'a [f64],
    /// The certified constants ρ^CP, ρ^box and their minimum with the product, ρ^cert (NaN
    /// where unknown: no weights).
    pub rho_cp: &'a [f64],
    pub rho_box: &'a [f64],
    pub rho_cert: &'a [f64],
    pub metrics: &'a MetricsSpec,
    pub mode: Stochastic,
    /// Train and test losses, when known: the measured gap.
    pub losses: Option<(Losses, Losses)>,
    /// How stochastic layers were measured, in words.
    pub stochastic: &'a str,
    /// Points per split the layers were measured on.
    pub points: (usize, usize),
}

/// Resolution over the layers, the bounds, the headline and the measurement section, into
/// `summary` (whose data, model and training sections the caller filled in).
pub fn conclude(summary: &mut Summary, c: Conclusion) {
    let clip = c.metrics.ce_clip;
    let alpha = 1.0 - c.metrics.confidence;
    let mut bounds = assemble(
        c.layers,
        c.divergences,
        c.rho,
        c.rho_local,
        clip,
        c.mode,
        alpha,
    );
    add_certified(&mut bounds, c.rho_cp, c.rho_box, c.rho_cert, clip);
    let gap = c.losses.as_ref().map(|(tr, te)| Gap::between(tr, te));
    let kl_best = bounds.kl_best_layer;
    let funnel = bounds.funnel_layer;
    let at = |l: Option<usize>, f: fn(&LayerRow) -> f64| l.map_or(f64::NAN, |l| f(&bounds.rows[l]));
    let kl01 = at(kl_best, |r| r.kl_bound);
    let w1b = at(funnel, |r| r.w1_bound);
    // a run in which no layer could be estimated at all has nothing to report
    let nothing = bounds
        .rows
        .iter()
        .all(|r| r.kl.error.is_some() && r.w1.error.is_some());
    let (status, reason) = if nothing {
        let first = bounds.rows[0].kl.error.clone().unwrap_or_default();
        (
            Status::Failed,
            Some(format!("no layer could be estimated: {first}")),
        )
    } else {
        (Status::Ok, None)
    };
    summary.status = status;
    summary.reason = reason;
    summary.losses = c.losses.map(|(train, test)| LossPair { train, test });
    summary.gap = gap;
    summary.funnel_layer = funnel;
    let gap_of = |f: fn(&Gap) -> f64| gap.as_ref().map_or(f64::NAN, f);
    summary.bounds = Some(BoundsSummary {
        kl: KlBoundSummary {
            layer: kl_best,
            zero_one: kl01,
            cross_entropy_clipped: at(kl_best, |r| r.kl_bound_ce),
            ratio_zero_one: crate::text::ratio(kl01, gap_of(|g| g.zero_one)),
            layer_any: bounds.kl_best_layer_any,
            zero_one_any: at(bounds.kl_best_layer_any, |r| r.kl_bound),
        },
        w1: W1BoundSummary {
            layer: funnel,
            cross_entropy_clipped: w1b,
            ratio_cross_entropy_clipped: crate::text::ratio(
                w1b,
                gap_of(|g| g.cross_entropy_clipped),
            ),
            layer_local: bounds.funnel_layer_local,
            w1_min_layer: bounds.w1_min_layer,
            layer_any: bounds.funnel_layer_any,
            cross_entropy_clipped_any: at(bounds.funnel_layer_any, |r| r.w1_bound),
            layer_cert: bounds.funnel_layer_cert,
            cross_entropy_clipped_cert: at(bounds.funnel_layer_cert, |r| r.w1_bound_cert),
            layer_cert_any: bounds.funnel_layer_cert_any,
            cross_entropy_clipped_cert_any: at(bounds.funnel_layer_cert_any, |r| r.w1_bound_cert),
            layer_debiased: bounds.funnel_layer_debiased,
            layer_debiased_cert: bounds.funnel_layer_debiased_cert,
            layer_debiased_local: bounds.funnel_layer_debiased_local,
        },
    });
    summary.measurement = Some(MeasurementSummary {
        stochastic_layers: c.stochastic.into(),
        points_train: c.points.0,
        points_test: c.points.1,
        kl_estimator: output::table::kl_estimators(&bounds.rows),
        w1_estimator: c.metrics.w1_name(),
        w1_bias: c.metrics.w1_bias(),
        bootstrap: c.metrics.bootstrap,
        permutations: c.metrics.permutations,
        confidence: c.metrics.confidence,
        ce_clip: clip,
        null_baseline: NULL_BASELINE.into(),
    });
    summary.layers = bounds.rows;
}
