//! `rankings.csv`: how well each measure ranks the cells of a sweep like each measured gap
//! does — Kendall's τ-b over the cells, with a bootstrap interval over configurations; τ-b
//! across configurations of their mean measure and mean gap; and the granulated τ (ψ per axis,
//! Ψ their mean) of Jiang et al. 2019, "Fantastic generalization measures and where to find
//! them", §4.
//!
//! Everything is computed from `summary.csv` alone (so `funnel report` rewrites the file
//! byte for byte):
//! * only `ok` cells count; a **configuration** is a cell's axis values (`depth`, `width` and
//!   the other axis columns) without its seed;
//! * **duplicates** are dropped: an `ok` cell with the same seed and the same text in every
//!   result column (all but the timings `train_s`, `total_s`) as an earlier cell is the same
//!   computation under other axis labels (depth 1 of a depth × width × activation sweep is one
//!   linear network), and would count one result twice;
//! * a (measure, gap) pair uses the cells where both are finite (a resolved-only minimum is NaN
//!   in a cell where no layer resolved);
//! * the interval is the 95% percentile interval of [`RESAMPLES`] bootstrap resamples: the
//!   configurations with replacement, and (for τ over the cells) within each drawn
//!   configuration its cells (seeds) with replacement; the draws of a row come from [`BOOTSTRAP_SEED`] and the row's
//!   `measure/gap` name, so they are reproducible and independent of the other rows.
//!   Pairs of cells from two draws of the same configuration are not compared (see
//!   [`bootstrap`]). Resamples whose τ is undefined (a constant side) are left out and the
//!   rest counted.

use std::collections::BTreeMap;

use crate::results::sweep_dir::{cell_text, csv_bytes};
use crate::stats::{mean_std, quantile, tau_b_of_pairs, tau_b_skipping, Resampler};
use crate::text::num;

/// Bootstrap resamples per row.
pub const RESAMPLES: usize = 2000;
/// The seed of the bootstrap draws (each row's stream: `derive_seed(BOOTSTRAP_SEED,
/// "rankings/<measure>/<gap>")`).
pub const BOOTSTRAP_SEED: u64 = 2019;
/// The gaps every measure is ranked against.
pub const GAPS: [&str; 3] = ["gap_zero_one", "gap_cross_entropy", "gap_ce_clipped"];
/// Result columns that differ between two runs of the same computation.
const TIMINGS: [&str; 2] = ["train_s", "total_s"];
/// The columns of `rankings.csv`.
pub const HEADER: [&str; 12] = [
    "measure",
    "gap",
    "kind",
    "tau_b",
    "tau_lo",
    "tau_hi",
    "resamples",
    "configurations",
    "cells",
    "duplicates",
    "combinations",
    "combinations_total",
];

/// Whether a `summary.csv` column is ranked: the resolved-only minima, every layer's KL and W1
/// bound and divergence, and the `_last` and `kl_label_l*` columns these prefixes also take in.
fn is_measure(m: &str) -> bool {
    ["kl_bound_l", "w1_bound_l", "kl_l", "w1_l"]
        .iter()
        .any(|p| m.starts_with(p))
        || m == "kl_bound_min"
        || m == "w1_bound_min"
}

/// A sweep's `ok` cells read from `summary.csv`, duplicates set aside.
pub struct Table {
    /// Axis columns: `depth`, `width`, then the study's other axes.
    pub axes: Vec<String>,
    /// The axes that take at least two values over the rows (the granulated τ's axes), with
    /// their number of values.
    pub varying: Vec<(usize, usize)>,
    /// Every configuration's axis values, in order of first appearance among the kept cells.
    pub configs: Vec<Vec<String>>,
    /// Result columns.
    pub columns: Vec<String>,
    /// Kept cells: configuration index and the value of each result column.
    pub cells: Vec<(usize, Vec<f64>)>,
    /// Dropped duplicate cells: the value of each result column.
    pub duplicates: Vec<Vec<f64>>,
}

/// Parses `summary.csv`: its axis columns are `depth`, `width` and those between `width` and
/// `gap_zero_one`; result columns are `gap_zero_one` and everything after it.
pub fn read_table(summary_csv: &[u8]) -> Result<Table, String> {
    let mut r = csv::Reader::from_reader(summary_csv);
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("summary.csv has no `{name}` column"))
    };
    let (status, seed, depth, width) = (col("status")?, col("seed")?, col("depth")?, col("width")?);
    let first = col(GAPS[0])?;
    let mut axis_cols = vec![depth, width];
    axis_cols.extend(width + 1..first);
    let axes: Vec<String> = axis_cols.iter().map(|&c| headers[c].to_string()).collect();
    let columns: Vec<String> = headers.iter().skip(first).map(String::from).collect();
    let compared: Vec<usize> = (first..headers.len())
        .filter(|&c| !TIMINGS.contains(&&headers[c]))
        .collect();
    let mut values_of: Vec<Vec<String>> = vec![Vec::new(); axes.len()];
    let mut configs: Vec<Vec<String>> = Vec::new();
    let mut seen: BTreeMap<Vec<String>, ()> = BTreeMap::new();
    let (mut cells, mut duplicates) = (Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("summary.csv row {}: {e}", i + 2))?;
        let key: Vec<String> = axis_cols
            .iter()
            .map(|&c| rec.get(c).unwrap_or("").trim().to_string())
            .collect();
        for (vals, v) in values_of.iter_mut().zip(&key) {
            if !vals.contains(v) {
                vals.push(v.clone());
            }
        }
        if rec.get(status).map(str::trim) != Some("ok") {
            continue;
        }
        let values: Vec<f64> = (first..headers.len())
            .map(|c| {
                rec.get(c)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            })
            .collect();
        let mut identity = vec![rec.get(seed).unwrap_or("").trim().to_string()];
        identity.extend(
            compared
                .iter()
                .map(|&c| rec.get(c).unwrap_or("").to_string()),
        );
        if seen.insert(identity, ()).is_some() {
            duplicates.push(values);
            continue;
        }
        let config = match configs.iter().position(|c| *c == key) {
            Some(k) => k,
            None => {
                configs.push(key);
                configs.len() - 1
            }
        };
        cells.push((config, values));
    }
    let varying = values_of
        .iter()
        .enumerate()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(a, v)| (a, v.len()))
        .collect();
    Ok(Table {
        axes,
        varying,
        configs,
        columns,
        cells,
        duplicates,
    })
}

/// A percentile interval and how many resamples had a defined τ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub resamples: usize,
}

fn interval(mut taus: Vec<f64>) -> Interval {
    taus.retain(|t| t.is_finite());
    taus.sort_by(f64::total_cmp);
    Interval {
        lo: quantile(&taus, 0.025),
        hi: quantile(&taus, 0.975),
        resamples: taus.len(),
    }
}

/// The mean of each side of a configuration's pairs.
fn means(pairs: &[(f64, f64)]) -> (f64, f64) {
    let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    (mean_std(&x).0, mean_std(&y).0)
}

/// τ-b of pairs, leaving out the pairs of two entries whose `tags` (original configuration,
/// draw) name the same configuration in different draws of a resample.
fn tau_b_resampled(pairs: &[(f64, f64)], tags: &[(usize, usize)]) -> f64 {
    tau_b_skipping(pairs, |i, j| {
        tags[i].0 == tags[j].0 && tags[i].1 != tags[j].1
    })
}

/// The bootstrap of τ-b over the cells and of τ-b over the configuration means: `groups` are
/// the configurations' finite (measure, gap) pairs (none empty). Each resample draws the
/// configurations with replacement; for τ over the cells, each drawn configuration's cells
/// with replacement too; for τ over the means, each drawn configuration keeps its observed
/// mean (the seeds' noise is already in the means the configurations are drawn from:
/// resampling the seeds again would add it twice and pull every resampled τ of the means
/// towards 0 — Davison and Hinkley 1997, §3.8, two-stage sampling; tried on 96 configurations
/// of 3 noisy seeds, the interval then lay wholly below the estimate: 0.877 against
/// [0.803, 0.865]). A configuration drawn twice is not compared with itself: pairs
/// from two draws of the same configuration are left out of both τ (the diagonal of τ's
/// U-statistic, a comparison the data do not have, which would also pull τ towards 0), so on
/// the original sample (every configuration drawn once, its cells as they are) both equal the
/// point estimates.
pub fn bootstrap(groups: &[Vec<(f64, f64)>], resamples: usize, seed: u64) -> (Interval, Interval) {
    let mut rng = Resampler::new(seed);
    let observed: Vec<(f64, f64)> = groups.iter().map(|g| means(g)).collect();
    let (mut over_cells, mut over_means) = (Vec::new(), Vec::new());
    let (mut pairs, mut tags) = (Vec::new(), Vec::new());
    let (mut ms, mut mtags) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        if groups.is_empty() {
            break;
        }
        pairs.clear();
        tags.clear();
        ms.clear();
        mtags.clear();
        for draw in 0..groups.len() {
            let k = rng.index(groups.len());
            let g = &groups[k];
            for _ in 0..g.len() {
                pairs.push(g[rng.index(g.len())]);
                tags.push((k, draw));
            }
            ms.push(observed[k]);
            mtags.push((k, draw));
        }
        over_cells.push(tau_b_resampled(&pairs, &tags));
        over_means.push(tau_b_resampled(&ms, &mtags));
    }
    (interval(over_cells), interval(over_means))
}

/// ψ of one axis: the mean, over the combinations of the other axes' values, of τ-b across the
/// configurations of that combination (those with a defined τ: at least two configurations
/// with finite means, neither side constant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Granule {
    pub psi: f64,
    /// Combinations whose τ entered the mean.
    pub used: usize,
    /// Combinations of the other axes' values in the study's grid.
    pub total: usize,
}

/// The granulated τ of every varying axis from the configurations' keys and mean pairs
/// (`varying` as [`Table::varying`]).
pub fn granulated(means: &[(&[String], (f64, f64))], varying: &[(usize, usize)]) -> Vec<Granule> {
    varying
        .iter()
        .map(|&(a, _)| {
            let mut groups: BTreeMap<Vec<&str>, Vec<(f64, f64)>> = BTreeMap::new();
            for (key, m) in means {
                let rest: Vec<&str> = key
                    .iter()
                    .enumerate()
                    .filter(|&(b, _)| b != a)
                    .map(|(_, v)| v.as_str())
                    .collect();
                groups.entry(rest).or_default().push(*m);
            }
            let taus: Vec<f64> = groups
                .values()
                .filter(|g| g.len() >= 2)
                .map(|g| tau_b_of_pairs(g))
                .filter(|t| t.is_finite())
                .collect();
            let psi = if taus.is_empty() {
                f64::NAN
            } else {
                taus.iter().sum::<f64>() / taus.len() as f64
            };
            let total = varying
                .iter()
                .filter(|&&(b, _)| b != a)
                .map(|&(_, n)| n)
                .product();
            Granule {
                psi,
                used: taus.len(),
                total,
            }
        })
        .collect()
}

/// `rankings.csv` and the lines to print.
pub struct Rankings {
    pub csv: Vec<u8>,
    pub lines: Vec<String>,
}

/// Computes `rankings.csv` from the bytes of `summary.csv`.
pub fn rankings(summary_csv: &[u8]) -> Result<Rankings, String> {
    let t = read_table(summary_csv)?;
    let col = |name: &str| t.columns.iter().position(|c| c == name);
    let finite = |v: &[f64], m: usize, g: usize| -> Option<(f64, f64)> {
        (v[m].is_finite() && v[g].is_finite()).then_some((v[m], v[g]))
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut lines = vec![format!(
        "Kendall τ-b with the measured gap over {} completed cells ({} duplicates dropped), \
         [95% interval] from {RESAMPLES} bootstrap resamples of configurations and their seeds:",
        t.cells.len(),
        t.duplicates.len()
    )];
    for (m, measure) in t.columns.iter().enumerate().filter(|(_, c)| is_measure(c)) {
        for gap in GAPS {
            let Some(g) = col(gap) else { continue };
            let mut groups: Vec<Vec<(f64, f64)>> = vec![Vec::new(); t.configs.len()];
            for (k, v) in &t.cells {
                groups[*k].extend(finite(v, m, g));
            }
            let dups = t
                .duplicates
                .iter()
                .filter(|v| finite(v, m, g).is_some())
                .count();
            let present: Vec<usize> = (0..groups.len())
                .filter(|&k| !groups[k].is_empty())
                .collect();
            let all: Vec<(f64, f64)> = groups.iter().flatten().copied().collect();
            let config_means: Vec<(&[String], (f64, f64))> = present
                .iter()
                .map(|&k| (t.configs[k].as_slice(), means(&groups[k])))
                .collect();
            let mean_pairs: Vec<(f64, f64)> = config_means.iter().map(|(_, p)| *p).collect();
            let nonempty: Vec<Vec<(f64, f64)>> =
                present.iter().map(|&k| groups[k].clone()).collect();
            let seed =
                funnel_core::derive_seed(BOOTSTRAP_SEED, &format!("rankings/{measure}/{gap}"));
            let (ci_cells, ci_means) = bootstrap(&nonempty, RESAMPLES, seed);
            let granules = granulated(&config_means, &t.varying);
            let psi_all = if granules.is_empty() || granules.iter().any(|g| g.psi.is_nan()) {
                f64::NAN
            } else {
                granules.iter().map(|g| g.psi).sum::<f64>() / granules.len() as f64
            };
            let counts = [
                present.len().to_string(),
                all.len().to_string(),
                dups.to_string(),
            ];
            let row =
                |kind: String, tau: f64, ci: Option<Interval>, comb: Option<(usize, usize)>| {
                    let mut r = vec![measure.clone(), gap.to_string(), kind, cell_text(tau)];
                    r.push(cell_text(ci.map_or(f64::NAN, |c| c.lo)));
                    r.push(cell_text(ci.map_or(f64::NAN, |c| c.hi)));
                    r.push(ci.map_or(String::new(), |c| c.resamples.to_string()));
                    r.extend(counts.iter().cloned());
                    r.push(comb.map_or(String::new(), |c| c.0.to_string()));
                    r.push(comb.map_or(String::new(), |c| c.1.to_string()));
                    r
                };
            let tau_cells = tau_b_of_pairs(&all);
            let tau_means = tau_b_of_pairs(&mean_pairs);
            rows.push(row("overall".into(), tau_cells, Some(ci_cells), None));
            rows.push(row("mean_gap".into(), tau_means, Some(ci_means), None));
            for (gr, &(a, _)) in granules.iter().zip(&t.varying) {
                let kind = format!("granulated:{}", t.axes[a]);
                rows.push(row(kind, gr.psi, None, Some((gr.used, gr.total))));
            }
            let used = granules.iter().map(|g| g.used).sum();
            let total = granules.iter().map(|g| g.total).sum();
            rows.push(row(
                "granulated_mean".into(),
                psi_all,
                None,
                Some((used, total)),
            ));
            let printed = (measure == "kl_bound_min" && gap == "gap_zero_one")
                || (measure == "w1_bound_min" && gap == "gap_ce_clipped")
                || (measure.starts_with("kl_bound_l") && gap == "gap_zero_one")
                || (measure.starts_with("w1_bound_l") && gap == "gap_ce_clipped");
            if printed {
                lines.push(format!(
                    "  {measure:<14} vs {gap:<15} τ = {:>6} [{}, {}] ({} cells, {} configurations); \
                     mean gap τ = {} [{}, {}]; Ψ = {}",
                    num(tau_cells),
                    num(ci_cells.lo),
                    num(ci_cells.hi),
                    all.len(),
                    present.len(),
                    num(tau_means),
                    num(ci_means.lo),
                    num(ci_means.hi),
                    num(psi_all)
                ));
            }
        }
    }
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    Ok(Rankings {
        csv: csv_bytes(&header, &rows),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(status, seed, depth, width, act, gap, measure, total_s)`.
    type Cell<'a> = (&'a str, u64, u64, u64, &'a str, f64, f64, f64);

    /// A `summary.csv` with axes `depth`, `width`, `act` (measure `kl_bound_min`).
    fn summary(rows: &[Cell]) -> Vec<u8> {
        let mut s = String::from(
            "cell,status,reason,seed,depth,width,act,gap_zero_one,kl_bound_min,train_s,total_s\n",
        );
        for (i, (st, seed, d, w, a, g, m, t)) in rows.iter().enumerate() {
            s.push_str(&format!(
                "c{i},{st},,{seed},{d},{w},{a},{},{},{t},{t}\n",
                cell_text(*g),
                cell_text(*m)
            ));
        }
        s.into_bytes()
    }

    /// The rows of `rankings.csv` of one measure and gap: kind → the row's fields by column.
    fn rows_of(csv: &[u8], measure: &str, gap: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut r = csv::Reader::from_reader(csv);
        let head = r.headers().unwrap().clone();
        assert_eq!(head.iter().collect::<Vec<_>>(), HEADER);
        let mut out = BTreeMap::new();
        for rec in r.records() {
            let rec = rec.unwrap();
            if &rec[0] == measure && &rec[1] == gap {
                let fields = head
                    .iter()
                    .zip(rec.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect();
                out.insert(rec[2].to_string(), fields);
            }
        }
        out
    }

    fn f(row: &BTreeMap<String, String>, col: &str) -> f64 {
        row[col].parse().unwrap()
    }

    /// A deterministic noise in [−0.5, 0.5).
    fn noise(i: u64) -> f64 {
        (funnel_core::splitmix64(i) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    #[test]
    fn tau_b_with_ties_in_both_sides_by_hand() {
        // x = 1 1 2 2 3, y = 1 1 1 2 3: of the 10 pairs, (0,1) is tied in both, (0,2) and
        // (1,2) in y only, (2,3) in x only, the other 6 concordant: C − D = 6, pairs not tied
        // in x: 10 − 2 = 8, in y: 10 − 3 = 7, τ_b = 6 / sqrt(56)
        let t = crate::stats::kendall_tau_b(&[1., 1., 2., 2., 3.], &[1., 1., 1., 2., 3.]);
        assert!((t - 6.0 / 56f64.sqrt()).abs() < 1e-15, "{t}");
        // an infinite or NaN side drops the pair
        let t = crate::stats::kendall_tau_b(&[1., f64::INFINITY, 2., 3.], &[1., 0., 2., 3.]);
        assert_eq!(t, 1.0);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0.025, 0.5, 0.975]) = 1.075, 2.5, 3.925
        let v = [1., 2., 3., 4.];
        for (q, want) in [
            (0.025, 1.075),
            (0.5, 2.5),
            (0.975, 3.925),
            (0.0, 1.0),
            (1.0, 4.0),
        ] {
            assert!((quantile(&v, q) - want).abs() < 1e-12, "{q}");
        }
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn a_monotone_measure_ranks_perfectly_with_a_point_interval() {
        // gap = measure³ (over the cells) and gap = 2·measure − 1 (an affine map also keeps
        // the order of means), over 4 × 2 × 2 configurations × 3 seeds
        for (affine, gap) in [
            (false, (|m: f64| m.powi(3)) as fn(f64) -> f64),
            (true, |m| 2.0 * m - 1.0),
        ] {
            let mut rows = Vec::new();
            for d in 1..=4 {
                for (w, a) in [(8, "relu"), (8, "tanh"), (16, "relu"), (16, "tanh")] {
                    for seed in 1..=3 {
                        let act = if a == "relu" { 0.0 } else { 0.35 };
                        let m = d as f64 + w as f64 / 10.0 + act + seed as f64 / 100.0;
                        rows.push(("ok", seed, d, w, a, gap(m), m, 1.0));
                    }
                }
            }
            let r = rankings(&summary(&rows)).unwrap();
            let k = rows_of(&r.csv, "kl_bound_min", "gap_zero_one");
            let kinds: &[&str] = if affine {
                &["overall", "mean_gap"]
            } else {
                &["overall"]
            };
            for kind in kinds {
                let row = &k[*kind];
                assert_eq!(
                    (f(row, "tau_b"), f(row, "tau_lo"), f(row, "tau_hi")),
                    (1.0, 1.0, 1.0),
                    "{kind}"
                );
                assert_eq!(row["resamples"], RESAMPLES.to_string());
                assert_eq!(
                    (&row["configurations"][..], &row["cells"][..]),
                    ("16", "48")
                );
                assert_eq!(row["duplicates"], "0");
                assert_eq!(row["combinations"], "");
            }
            // the configuration means themselves are in order either way
            assert_eq!(f(&k["mean_gap"], "tau_b"), 1.0);
            // axes depth (4 values), width and act (2 values each)
            for (axis, used, total) in [("depth", 4, 4), ("width", 8, 8), ("act", 8, 8)] {
                let row = &k[&format!("granulated:{axis}")];
                assert_eq!(f(row, "tau_b"), 1.0, "{axis}");
                assert!(f(row, "tau_lo").is_nan() && row["resamples"].is_empty());
                assert_eq!(row["combinations"], used.to_string(), "{axis}");
                assert_eq!(row["combinations_total"], total.to_string(), "{axis}");
            }
            assert_eq!(f(&k["granulated_mean"], "tau_b"), 1.0);
            assert_eq!(k["granulated_mean"]["combinations"], "20");
            assert_eq!(k["granulated_mean"]["combinations_total"], "20");
            assert_eq!(k.len(), 6);
            // reproducible
            assert_eq!(rankings(&summary(&rows)).unwrap().csv, r.csv);
        }
    }

    #[test]
    fn duplicates_failed_cells_and_nan_measures_are_left_out() {
        let mut rows = Vec::new();
        for d in 1..=3u64 {
            for w in [8, 16] {
                for seed in 1..=2u64 {
                    // depth 1 is the same network at both widths: the same results (only the
                    // timings differ); depth 3 seed 2 has no finite measure
                    let wf = if d == 1 { 0.0 } else { w as f64 };
                    let m = d as f64 + wf / 10.0 + seed as f64 / 100.0 + 0.3 * noise(seed + 10 * d);
                    let g = if d == 3 && seed == 2 {
                        f64::NAN
                    } else {
                        m * 0.5
                    };
                    let t = (d * w + seed) as f64;
                    rows.push(("ok", seed, d, w, "relu", g, m, t));
                }
            }
        }
        rows.push(("failed", 1, 2, 8, "relu", f64::NAN, f64::NAN, 0.0));
        let t = read_table(&summary(&rows)).unwrap();
        assert_eq!(t.axes, ["depth", "width", "act"]);
        assert_eq!(t.varying, [(0, 3), (1, 2)]);
        assert_eq!((t.cells.len(), t.duplicates.len()), (10, 2));
        // the duplicates are depth 1 width 16's: that configuration is gone
        assert_eq!(t.configs.len(), 5);
        assert!(!t
            .configs
            .contains(&vec!["1".into(), "16".into(), "relu".into()]));
        let r = rankings(&summary(&rows)).unwrap();
        let k = rows_of(&r.csv, "kl_bound_min", "gap_zero_one");
        let row = &k["overall"];
        assert_eq!(row["cells"], "8"); // 10 kept, 2 with a NaN gap
        assert_eq!(row["configurations"], "5");
        assert_eq!(row["duplicates"], "2");
        assert_eq!(f(row, "tau_b"), 1.0); // gap = measure / 2 where both are finite
        assert!(
            r.lines[0].contains("10 completed cells (2 duplicates dropped)"),
            "{}",
            r.lines[0]
        );
    }

    #[test]
    fn the_interval_holds_the_estimate_and_shrinks_with_more_configurations() {
        let groups = |configs: u64| -> Vec<Vec<(f64, f64)>> {
            (0..configs)
                .map(|k| {
                    (0..3)
                        .map(|s| {
                            let m = k as f64 / configs as f64;
                            let i = 100 * k + s;
                            (m + noise(i), m + noise(i + 1_000_000))
                        })
                        .collect()
                })
                .collect()
        };
        let mut widths = Vec::new();
        for configs in [8, 32, 128] {
            let g = groups(configs);
            let all: Vec<(f64, f64)> = g.iter().flatten().copied().collect();
            let m: Vec<(f64, f64)> = g.iter().map(|p| means(p)).collect();
            let (t_cells, t_means) = (tau_b_of_pairs(&all), tau_b_of_pairs(&m));
            let (ci_cells, ci_means) = bootstrap(&g, RESAMPLES, 7);
            assert!(
                ci_cells.lo <= t_cells && t_cells <= ci_cells.hi,
                "{configs}: {t_cells} {ci_cells:?}"
            );
            assert!(
                ci_means.lo <= t_means && t_means <= ci_means.hi,
                "{configs}: {t_means} {ci_means:?}"
            );
            assert!(t_cells > 0.0 && ci_cells.resamples == RESAMPLES);
            widths.push((ci_cells.hi - ci_cells.lo, ci_means.hi - ci_means.lo));
        }
        for w in widths.windows(2) {
            assert!(w[1].0 < w[0].0 && w[1].1 < w[0].1, "{widths:?}");
        }
        // the same seed, the same interval; another seed, another
        let g = groups(24);
        assert_eq!(bootstrap(&g, 500, 1), bootstrap(&g, 500, 1));
        assert_ne!(bootstrap(&g, 500, 1), bootstrap(&g, 500, 2));
    }

    #[test]
    fn granulated_tau_on_a_hand_built_grid() {
        // axes a ∈ {1, 2, 3} × b ∈ {x, y}, configuration means (measure, gap):
        //   b = x: (1, 1) (2, 3) (3, 2) → τ over a = (2 − 1)/3 = 1/3
        //   b = y: (3, 1) (2, 2) (1, 3) → τ over a = −1
        // ψ_a = (1/3 − 1)/2 = −1/3 over 2 of 2 combinations;
        //   a = 1: (1, 1) (3, 1): the gap is constant, τ undefined, not counted
        //   a = 2: (2, 3) (2, 2): the measure is constant, not counted
        //   a = 3: (3, 2) (1, 3) → −1
        // ψ_b = −1 over 1 of 3 combinations; Ψ = (−1/3 − 1)/2 = −2/3
        let cells = [
            (1, "x", 1.0, 1.0),
            (2, "x", 2.0, 3.0),
            (3, "x", 3.0, 2.0),
            (1, "y", 3.0, 1.0),
            (2, "y", 2.0, 2.0),
            (3, "y", 1.0, 3.0),
        ];
        let keys: Vec<Vec<String>> = cells
            .iter()
            .map(|(a, b, _, _)| vec![a.to_string(), b.to_string()])
            .collect();
        let means: Vec<(&[String], (f64, f64))> = keys
            .iter()
            .zip(&cells)
            .map(|(k, c)| (k.as_slice(), (c.2, c.3)))
            .collect();
        let g = granulated(&means, &[(0, 3), (1, 2)]);
        assert!((g[0].psi + 1.0 / 3.0).abs() < 1e-15, "{g:?}");
        assert_eq!((g[0].used, g[0].total), (2, 2));
        assert_eq!(
            g[1],
            Granule {
                psi: -1.0,
                used: 1,
                total: 3
            }
        );
        // the same through summary.csv, two seeds a configuration around each mean (the axis
        // `a` in the depth column, `b` in the activation column, width constant)
        let mut rows = Vec::new();
        for (a, b, m, gap) in cells {
            for (seed, e) in [(1, -0.25), (2, 0.25)] {
                rows.push(("ok", seed, a, 8, b, gap + e, m + e, 1.0));
            }
        }
        let r = rankings(&summary(&rows)).unwrap();
        let k = rows_of(&r.csv, "kl_bound_min", "gap_zero_one");
        assert!((f(&k["granulated:depth"], "tau_b") + 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(f(&k["granulated:act"], "tau_b"), -1.0);
        assert_eq!(k["granulated:act"]["combinations"], "1");
        assert_eq!(k["granulated:act"]["combinations_total"], "3");
        assert!(!k.contains_key("granulated:width"));
        let psi = f(&k["granulated_mean"], "tau_b");
        assert!((psi + 2.0 / 3.0).abs() < 1e-15, "{psi}");
        // where an axis has no defined τ, neither has Ψ (never a 0 in its place)
        let flat: Vec<_> = rows
            .iter()
            .map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, 1.0, r.7))
            .collect();
        let k = rows_of(
            &rankings(&summary(&flat)).unwrap().csv,
            "kl_bound_min",
            "gap_zero_one",
        );
        for kind in ["overall", "mean_gap", "granulated:depth", "granulated_mean"] {
            assert_eq!(k[kind]["tau_b"], "NaN", "{kind}");
        }
        assert_eq!(k["granulated:depth"]["combinations"], "0");
    }
}
