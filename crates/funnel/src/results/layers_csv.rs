//! `layers.csv` (one row per layer, every estimate with null and interval) and
//! `training.csv` (one row per epoch).

use funnel_metrics::LayerRow;
use funnel_train::EpochRecord;
use serde::Serialize;

/// One row of `layers.csv`.
#[derive(Serialize)]
struct LayerCsv<'a> {
    layer: usize,
    name: &'a str,
    role: &'a str,
    width: usize,
    rank: usize,
    activation: &'a str,
    regularizer: &'a str,
    kl: f64,
    kl_lo: f64,
    kl_hi: f64,
    kl_null: f64,
    kl_null_q95: f64,
    kl_p: f64,
    kl_resolved: bool,
    kl_excess: f64,
    kl_excess_lo: f64,
    kl_excess_hi: f64,
    kl_se: f64,
    kl_resolution: f64,
    kl_points_needed: f64,
    kl_permutations: usize,
    kl_upper: f64,
    kl_label: f64,
    kl_bound: f64,
    kl_bound_ce: f64,
    kl_vacuous: bool,
    kl_estimator: &'a str,
    kl_points_train: usize,
    kl_points_test: usize,
    kl_dims: usize,
    kl_resamples: usize,
    kl_seconds: f64,
    w1: f64,
    w1_lo: f64,
    w1_hi: f64,
    w1_null: f64,
    w1_null_q95: f64,
    w1_p: f64,
    w1_resolved: bool,
    w1_excess: f64,
    w1_excess_lo: f64,
    w1_excess_hi: f64,
    w1_se: f64,
    w1_resolution: f64,
    w1_points_needed: f64,
    w1_permutations: usize,
    w1_upper: f64,
    w1_label_tv: f64,
    w1_estimator: &'a str,
    w1_bias: funnel_metrics::Bias,
    w1_points_train: usize,
    w1_points_test: usize,
    w1_resamples: usize,
    w1_seconds: f64,
    lipschitz: f64,
    w1_bound: f64,
    w1_vacuous: bool,
    kl_rise: bool,
    lipschitz_local: f64,
    w1_bound_local: f64,
    lipschitz_cp: f64,
    lipschitz_box: f64,
    lipschitz_cert: f64,
    w1_bound_cert: f64,
    w1_debiased: f64,
    w1_debiased_cert: f64,
    w1_debiased_local: f64,
    eta: f64,
    eta_product: f64,
    kl_contracted: f64,
    kl_contracted_bound: f64,
    kl_ratio: f64,
    kl_ratio_lo: f64,
    kl_ratio_hi: f64,
    kl_ratio_method: String,
    kl_ratio_vs_eta: f64,
    mi_ty: f64,
    mi_ty_lo: f64,
    mi_ty_hi: f64,
    mi_ty_null: f64,
    mi_ty_p: f64,
    mi_ty_excess: f64,
    mi_ty_resolved: bool,
    mi_ty_estimator: &'a str,
    mi_xt: f64,
    mi_xt_lo: f64,
    mi_xt_hi: f64,
    mi_xt_estimator: &'a str,
    mi_points: usize,
    notes: String,
}

/// Every note and error of a row, `kl:`/`w1:`-prefixed, joined by `; `.
pub fn row_notes(r: &LayerRow) -> String {
    let mut notes = Vec::new();
    let mi = [("mi_ty", &r.mi_ty), ("mi_xt", &r.mi_xt)];
    let mi = mi.iter().filter_map(|(t, e)| e.as_ref().map(|e| (*t, e)));
    for (tag, e) in [("kl", &r.kl), ("w1", &r.w1)].into_iter().chain(mi) {
        if let Some(err) = &e.error {
            notes.push(format!("{tag}: {err}"));
        }
        notes.extend(e.notes.iter().map(|n| format!("{tag}: {n}")));
    }
    notes.join("; ")
}

/// A field of an optional estimate, NaN (an empty-looking `NaN` cell) when not measured.
fn mi(e: &Option<funnel_metrics::Estimate>, f: fn(&funnel_metrics::Estimate) -> f64) -> f64 {
    e.as_ref().map_or(f64::NAN, f)
}

pub fn layers_csv(rows: &[LayerRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(LayerCsv {
            layer: r.layer,
            name: &r.name,
            role: &r.role,
            width: r.width,
            rank: r.rank,
            activation: &r.activation,
            regularizer: &r.regularizer,
            kl: r.kl.value,
            kl_lo: r.kl.lo,
            kl_hi: r.kl.hi,
            kl_null: r.kl.null,
            kl_null_q95: r.kl.null_q95,
            kl_p: r.kl.p_value,
            kl_resolved: r.kl.resolved,
            kl_excess: r.kl.excess,
            kl_excess_lo: r.kl.excess_lo,
            kl_excess_hi: r.kl.excess_hi,
            kl_se: r.kl.se,
            kl_resolution: r.kl.resolution,
            kl_points_needed: r.kl.points_needed,
            kl_permutations: r.kl.permutations,
            kl_upper: r.kl.upper,
            kl_label: r.kl.label_term,
            kl_bound: r.kl_bound,
            kl_bound_ce: r.kl_bound_ce,
            kl_vacuous: r.kl_vacuous,
            kl_estimator: &r.kl.estimator,
            kl_points_train: r.kl.points_train,
            kl_points_test: r.kl.points_test,
            kl_dims: r.kl.dims,
            kl_resamples: r.kl.resamples,
            kl_seconds: r.kl.seconds,
            w1: r.w1.value,
            w1_lo: r.w1.lo,
            w1_hi: r.w1.hi,
            w1_null: r.w1.null,
            w1_null_q95: r.w1.null_q95,
            w1_p: r.w1.p_value,
            w1_resolved: r.w1.resolved,
            w1_excess: r.w1.excess,
            w1_excess_lo: r.w1.excess_lo,
            w1_excess_hi: r.w1.excess_hi,
            w1_se: r.w1.se,
            w1_resolution: r.w1.resolution,
            w1_points_needed: r.w1.points_needed,
            w1_permutations: r.w1.permutations,
            w1_upper: r.w1.upper,
            w1_label_tv: r.w1.label_term,
            w1_estimator: &r.w1.estimator,
            w1_bias: r.w1.bias,
            w1_points_train: r.w1.points_train,
            w1_points_test: r.w1.points_test,
            w1_resamples: r.w1.resamples,
            w1_seconds: r.w1.seconds,
            lipschitz: r.lipschitz,
            w1_bound: r.w1_bound,
            w1_vacuous: r.w1_vacuous,
            kl_rise: r.kl_rise,
            lipschitz_local: r.lipschitz_local,
            w1_bound_local: r.w1_bound_local,
            lipschitz_cp: r.lipschitz_cp,
            lipschitz_box: r.lipschitz_box,
            lipschitz_cert: r.lipschitz_cert,
            w1_bound_cert: r.w1_bound_cert,
            w1_debiased: r.w1_debiased,
            w1_debiased_cert: r.w1_debiased_cert,
            w1_debiased_local: r.w1_debiased_local,
            eta: r.eta,
            eta_product: r.eta_product,
            kl_contracted: r.kl_contracted,
            kl_contracted_bound: r.kl_contracted_bound,
            kl_ratio: r.kl_ratio,
            kl_ratio_lo: r.kl_ratio_lo,
            kl_ratio_hi: r.kl_ratio_hi,
            kl_ratio_method: r.kl_ratio_method.clone(),
            kl_ratio_vs_eta: r.kl_ratio_vs_eta,
            mi_ty: mi(&r.mi_ty, |e| e.value),
            mi_ty_lo: mi(&r.mi_ty, |e| e.lo),
            mi_ty_hi: mi(&r.mi_ty, |e| e.hi),
            mi_ty_null: mi(&r.mi_ty, |e| e.null),
            mi_ty_p: mi(&r.mi_ty, |e| e.p_value),
            mi_ty_excess: mi(&r.mi_ty, |e| e.excess),
            mi_ty_resolved: r.mi_ty.as_ref().is_some_and(|e| e.resolved),
            mi_ty_estimator: r.mi_ty.as_ref().map_or("", |e| e.estimator.as_str()),
            mi_xt: mi(&r.mi_xt, |e| e.value),
            mi_xt_lo: mi(&r.mi_xt, |e| e.lo),
            mi_xt_hi: mi(&r.mi_xt, |e| e.hi),
            mi_xt_estimator: r.mi_xt.as_ref().map_or("", |e| e.estimator.as_str()),
            mi_points: r.mi_ty.as_ref().map_or(0, |e| e.points_train),
            notes: row_notes(r),
        })
        .expect("writing CSV to memory cannot fail");
    }
    w.into_inner().expect("in-memory writer")
}

#[derive(Serialize)]
struct EpochCsv {
    epoch: usize,
    batch_loss: f64,
    train_ce: f64,
    train_ce_clipped: f64,
    train_zero_one: f64,
    train_acc: f64,
    test_ce: f64,
    test_ce_clipped: f64,
    test_zero_one: f64,
    test_acc: f64,
    seconds: f64,
}

pub fn training_csv(history: &[EpochRecord]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // header written explicitly so an empty history (0 epochs, or divergence in epoch 1)
    // still yields a parseable file
    w.write_record([
        "epoch",
        "batch_loss",
        "train_ce",
        "train_ce_clipped",
        "train_zero_one",
        "train_acc",
        "test_ce",
        "test_ce_clipped",
        "test_zero_one",
        "test_acc",
        "seconds",
    ])
    .expect("in-memory CSV");
    for r in history {
        w.serialize(EpochCsv {
            epoch: r.epoch,
            batch_loss: r.batch_loss,
            train_ce: r.train.cross_entropy,
            train_ce_clipped: r.train.cross_entropy_clipped,
            train_zero_one: r.train.zero_one,
            train_acc: r.train.accuracy(),
            test_ce: r.test.cross_entropy,
            test_ce_clipped: r.test.cross_entropy_clipped,
            test_zero_one: r.test.zero_one,
            test_acc: r.test.accuracy(),
            seconds: r.seconds,
        })
        .expect("in-memory CSV");
    }
    w.into_inner().expect("in-memory writer")
}
