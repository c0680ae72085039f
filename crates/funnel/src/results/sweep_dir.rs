//! The files of a sweep folder: `sweep.json` (the study's cells, [`SweepMeta`]), where a
//! cell's run lives ([`cell_run`]), and `summary.csv` — one row per cell, read from the cell's
//! typed `summary.json`; its columns (head, per-layer, last-layer, closed-form and tail
//! fields) are defined here only.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use funnel_metrics::LayerRow;
use funnel_train::class_mean::ClosedForm;
use funnel_train::Gap;
use serde::{Deserialize, Serialize};

use crate::figure_spec::FigureSpec;
use crate::results::summary::{self, LossPair, Status, W1BoundSummary};

/// One cell: a point of the axes' product and a seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    pub id: String,
    /// Configuration id: the cell id without index and seed (cells that differ only by seed
    /// share it).
    pub config: String,
    pub seed: u64,
    /// Axis key → value as shown in the CSV files, in column order.
    pub axes: Vec<(String, String)>,
    /// `--set` arguments of the child (name and seed included).
    pub overrides: Vec<String>,
    /// Number of weight layers L (hidden layers + 1).
    pub depth: usize,
    /// The `width` axis, or the common hidden width when all are equal.
    pub width: Option<usize>,
    /// The cell's resolved config (what `funnel run` freezes as config.toml).
    pub resolved: String,
}

/// `sweep.json`: the study a sweep folder holds.
#[derive(Serialize, Deserialize)]
pub struct SweepMeta {
    pub name: String,
    pub fingerprint: String,
    /// `I/N`, or absent for the whole study.
    pub shard: Option<String>,
    /// Every cell of the study (not only this shard's).
    pub cells: Vec<Cell>,
    /// The study's `[[figure]]`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<FigureSpec>,
}

/// A sweep folder's `sweep.json`, when it has a readable one.
pub fn read_meta(dir: &Path) -> Option<SweepMeta> {
    serde_json::from_str(&fs::read_to_string(dir.join("sweep.json")).ok()?).ok()
}

/// The finished run folder of a cell (one holding summary.json), if any.
pub fn cell_run(cell_dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(cell_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                && p.join("summary.json").is_file()
        })
        .collect();
    runs.sort();
    runs.pop()
}

/// One row of `summary.csv`.
pub struct Row {
    pub cell: Cell,
    pub status: String,
    pub reason: String,
    /// metric name → value (NaN when absent).
    pub values: BTreeMap<String, f64>,
}

/// The row of one cell, or None when it has not run (or its `summary.json` does not read).
pub fn read_row(sweep: &Path, cell: &Cell) -> Option<Row> {
    let cdir = sweep.join("cells").join(&cell.id);
    let mut values = BTreeMap::new();
    if let Some(run) = cell_run(&cdir) {
        let s = summary::read(&run).ok()?;
        let status = match s.status {
            Status::Ok => "ok",
            Status::Failed => "failed",
        }
        .to_string();
        let reason = s.reason.clone().unwrap_or_default();
        let gap = |f: fn(&Gap) -> f64| s.gap.as_ref().map_or(f64::NAN, f);
        values.insert("gap_zero_one".into(), gap(|g| g.zero_one));
        values.insert("gap_cross_entropy".into(), gap(|g| g.cross_entropy));
        values.insert("gap_ce_clipped".into(), gap(|g| g.cross_entropy_clipped));
        let (mut klmin, mut kllayer, mut w1min) = (f64::NAN, f64::NAN, f64::NAN);
        for (i, l) in s.layers.iter().enumerate() {
            let (kb, wb) = (l.kl_bound, l.w1_bound);
            values.insert(
                format!("kl_resolved_l{i}"),
                f64::from(u8::from(l.kl.resolved)),
            );
            values.insert(
                format!("w1_resolved_l{i}"),
                f64::from(u8::from(l.w1.resolved)),
            );
            // the debiased divergence: label term + (value − null mean)
            values.insert(format!("kl_debiased_l{i}"), l.kl.label_term + l.kl.excess);
            // the headline minima are over resolved layers only (never an unresolved bound);
            // NaN compares false, so the first finite bound replaces the NaN start
            if l.kl.resolved && kb.is_finite() && (klmin.is_nan() || kb < klmin) {
                klmin = kb;
                kllayer = i as f64;
            }
            if l.w1.resolved && wb.is_finite() && (w1min.is_nan() || wb < w1min) {
                w1min = wb;
            }
            values.insert(format!("kl_bound_l{i}"), kb);
            values.insert(format!("w1_bound_l{i}"), wb);
            for (prefix, field) in LAYER_FIELDS {
                values.insert(format!("{prefix}{i}"), field(l));
            }
        }
        // the last layer (the logits) under names that do not depend on the depth
        if let Some(last) = s.layers.last() {
            for (name, field) in LAST_FIELDS {
                values.insert(format!("{name}_last"), field(last));
            }
        }
        // class-mean linear DNNs: the closed forms of every layer (DESIGN §2.7)
        if let Some(lg) = &s.linear_gaussian {
            for (i, l) in lg.layers.iter().enumerate() {
                for (prefix, field) in CLOSED_FIELDS {
                    values.insert(format!("{prefix}{i}"), field(l));
                }
            }
        }
        let layer = |l: Option<usize>| l.map_or(f64::NAN, |l| l as f64);
        let w1 = s.bounds.as_ref().map(|b| &b.w1);
        values.insert("kl_bound_min".into(), klmin);
        values.insert("kl_bound_min_layer".into(), kllayer);
        values.insert("w1_bound_min".into(), w1min);
        values.insert("funnel_layer".into(), layer(s.funnel_layer));
        values.insert(
            "funnel_layer_local".into(),
            layer(w1.and_then(|w| w.layer_local)),
        );
        values.insert(
            "w1_min_layer".into(),
            layer(w1.and_then(|w| w.w1_min_layer)),
        );
        values.insert(
            "w1_bound_cert_min".into(),
            w1.map_or(f64::NAN, |w| w.cross_entropy_clipped_cert),
        );
        for (name, f) in [
            (
                "funnel_layer_cert",
                (|w| w.layer_cert) as fn(&W1BoundSummary) -> Option<usize>,
            ),
            ("funnel_layer_cert_any", |w| w.layer_cert_any),
            ("funnel_layer_debiased", |w| w.layer_debiased),
            ("funnel_layer_debiased_cert", |w| w.layer_debiased_cert),
            ("funnel_layer_debiased_local", |w| w.layer_debiased_local),
        ] {
            values.insert(name.into(), layer(w1.and_then(f)));
        }
        // dims = input, hidden widths…, classes
        values.insert(
            "hidden_layers".into(),
            s.model.dims.len().saturating_sub(2) as f64,
        );
        values.insert("parameters".into(), s.model.parameters as f64);
        let loss = |f: fn(&LossPair) -> f64| s.losses.as_ref().map_or(f64::NAN, f);
        values.insert("train_zero_one".into(), loss(|l| l.train.zero_one));
        values.insert("test_zero_one".into(), loss(|l| l.test.zero_one));
        values.insert("train_s".into(), s.timings.train_s);
        values.insert("total_s".into(), s.timings.total_s);
        Some(Row {
            cell: cell.clone(),
            status,
            reason,
            values,
        })
    } else if let Ok(msg) = fs::read_to_string(cdir.join("error.txt")) {
        Some(Row {
            cell: cell.clone(),
            status: "error".into(),
            reason: msg,
            values,
        })
    } else {
        None
    }
}

/// A field of a layer's row, as a number.
type LayerField = fn(&LayerRow) -> f64;

/// A field of a layer's linear-Gaussian closed forms, as a number.
type ClosedField = fn(&ClosedForm) -> f64;

pub const HEAD: [&str; 9] = [
    "gap_zero_one",
    "gap_cross_entropy",
    "gap_ce_clipped",
    "kl_bound_min",
    "kl_bound_min_layer",
    "w1_bound_min",
    "funnel_layer",
    "funnel_layer_local",
    "w1_min_layer",
];

/// The funnels under the certified constants and the debiased curves, after the per-layer
/// columns (so that the columns before them keep their places in older readers).
pub const CERT_HEAD: [&str; 6] = [
    "w1_bound_cert_min",
    "funnel_layer_cert",
    "funnel_layer_cert_any",
    "funnel_layer_debiased",
    "funnel_layer_debiased_cert",
    "funnel_layer_debiased_local",
];

/// Per-layer columns of `summary.csv` beyond the two bounds: `<prefix><layer>` ← the field
/// of the layer's entry in `summary.json`.
pub const LAYER_FIELDS: [(&str, LayerField); 30] = [
    ("kl_l", |l| l.kl.value),
    ("w1_l", |l| l.w1.value),
    ("kl_null_l", |l| l.kl.null),
    ("w1_null_l", |l| l.w1.null),
    ("kl_excess_l", |l| l.kl.excess),
    ("w1_excess_l", |l| l.w1.excess),
    ("kl_p_l", |l| l.kl.p_value),
    ("w1_p_l", |l| l.w1.p_value),
    ("kl_hi_l", |l| l.kl.hi),
    ("w1_hi_l", |l| l.w1.hi),
    ("kl_label_l", |l| l.kl.label_term),
    ("rank_l", |l| l.rank as f64),
    ("lipschitz_l", |l| l.lipschitz),
    ("eta_l", |l| l.eta),
    ("eta_product_l", |l| l.eta_product),
    ("kl_ratio_l", |l| l.kl_ratio),
    ("kl_ratio_lo_l", |l| l.kl_ratio_lo),
    // +∞ where the previous layer's part can be ≤ 0; aggregate.csv averages finite values
    // only, so `kl_ratio_unbounded_l` says in how many seeds that happened
    ("kl_ratio_hi_l", |l| l.kl_ratio_hi),
    ("kl_ratio_unbounded_l", |l| {
        if l.kl_ratio_hi.is_nan() {
            f64::NAN
        } else {
            f64::from(u8::from(l.kl_ratio_hi == f64::INFINITY))
        }
    }),
    ("kl_ratio_vs_eta_l", |l| l.kl_ratio_vs_eta),
    ("kl_contracted_bound_l", |l| l.kl_contracted_bound),
    ("w1_bound_local_l", |l| l.w1_bound_local),
    ("lipschitz_local_l", |l| l.lipschitz_local),
    ("lipschitz_cp_l", |l| l.lipschitz_cp),
    ("lipschitz_box_l", |l| l.lipschitz_box),
    ("lipschitz_cert_l", |l| l.lipschitz_cert),
    ("w1_bound_cert_l", |l| l.w1_bound_cert),
    ("w1_debiased_l", |l| l.w1_debiased),
    ("w1_debiased_cert_l", |l| l.w1_debiased_cert),
    ("w1_debiased_local_l", |l| l.w1_debiased_local),
];

/// `<name>_last` columns: fields of the last layer (the logits).
pub const LAST_FIELDS: [(&str, LayerField); 6] = [
    ("kl", |l| l.kl.value),
    ("kl_bound", |l| l.kl_bound),
    ("w1_bound", |l| l.w1_bound),
    ("eta_product", |l| l.eta_product),
    ("kl_contracted_bound", |l| l.kl_contracted_bound),
    ("w1_bound_local", |l| l.w1_bound_local),
];

/// Per-layer closed-form columns of class-mean runs: `<prefix><layer>` ← the field of
/// `linear_gaussian.layers[layer]` in `summary.json`.
pub const CLOSED_FIELDS: [(&str, ClosedField); 7] = [
    ("closed_rank_l", |c| c.rank as f64),
    ("frobenius_l", |c| c.frobenius),
    ("kl_closed_l", |c| c.kl_per_run),
    ("kl_expected_l", |c| c.kl_expected),
    ("kl_bound_expected_l", |c| c.kl_bound_expected),
    ("w2_closed_l", |c| c.w2_per_run),
    ("w2_expected_l", |c| c.w2_expected),
];

/// Columns after the per-layer ones.
pub const TAIL: [&str; 5] = [
    "hidden_layers",
    "parameters",
    "train_zero_one",
    "test_zero_one",
    "train_s",
];

/// Metric columns in order, for cells with at most `layers` layers (0..layers).
pub fn metric_columns(layers: usize) -> Vec<String> {
    let mut cols: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
    cols.extend(LAST_FIELDS.iter().map(|(n, _)| format!("{n}_last")));
    let prefixes = [
        "kl_bound_l",
        "w1_bound_l",
        "kl_resolved_l",
        "w1_resolved_l",
        "kl_debiased_l",
    ]
    .into_iter()
    .chain(LAYER_FIELDS.iter().map(|(p, _)| *p))
    .chain(CLOSED_FIELDS.iter().map(|(p, _)| *p));
    for prefix in prefixes {
        cols.extend((0..layers).map(|i| format!("{prefix}{i}")));
    }
    cols.extend(CERT_HEAD.iter().map(|s| s.to_string()));
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    cols.push("total_s".into());
    cols
}

pub fn cell_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

pub fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("in memory");
    for r in rows {
        w.write_record(r).expect("in memory");
    }
    w.into_inner().expect("in memory")
}
