//! A sweep's depth figures: `plots/bounds_vs_depth` and `plots/funnel_vs_depth`.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::canvas::*;
use super::*;

// ---------------------------------------------------------------- per sweep

/// One cell of a sweep's `summary.csv`.
#[derive(Debug, Clone)]
pub struct Cell {
    depth: f64,
    width: String,
    activation: Option<String>,
    values: BTreeMap<&'static str, f64>,
    /// `kl_debiased_l0…` (label term + excess per layer), empty for summaries written before
    /// the size-matched null.
    debiased: Vec<f64>,
}

pub const SWEEP_VALUES: [&str; 5] = [
    "gap_zero_one",
    "gap_ce_clipped",
    "kl_bound_min",
    "w1_bound_min",
    "funnel_layer",
];

/// Reads a sweep's `summary.csv` (columns `cell, status, seed, depth, width,
/// model.activation` (optional), `gap_zero_one, gap_ce_clipped, kl_bound_min, w1_bound_min,
/// funnel_layer`); rows whose status is not `ok` are left out.
pub fn read_sweep(csv_bytes: &[u8]) -> Result<Vec<Cell>, String> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| col(name).ok_or_else(|| format!("summary.csv has no `{name}` column"));
    let (depth, width) = (need("depth")?, need("width")?);
    let status = col("status");
    let activation = col("model.activation").or_else(|| col("activation"));
    let values: Vec<(&'static str, usize)> = SWEEP_VALUES
        .iter()
        .map(|n| need(n).map(|c| (*n, c)))
        .collect::<Result<_, _>>()?;
    let debiased: Vec<usize> = (0..)
        .map_while(|l| col(&format!("kl_debiased_l{l}")))
        .collect();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("summary.csv row {}: {e}", i + 2))?;
        if status.is_some_and(|s| rec.get(s).is_some_and(|v| v.trim() != "ok")) {
            continue;
        }
        let parse = |c: usize| -> f64 {
            rec.get(c)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let d = parse(depth);
        if !d.is_finite() {
            return Err(format!("summary.csv row {}: depth is not a number", i + 2));
        }
        out.push(Cell {
            depth: d,
            width: rec.get(width).unwrap_or("").trim().to_string(),
            activation: activation.map(|a| rec.get(a).unwrap_or("").trim().to_string()),
            values: values.iter().map(|&(n, c)| (n, parse(c))).collect(),
            debiased: debiased.iter().map(|&c| parse(c)).collect(),
        });
    }
    if out.is_empty() {
        return Err("summary.csv has no finished (status ok) cell".into());
    }
    Ok(out)
}

/// Per group label, per depth, the items of its cells.
pub type Grouped<T> = Vec<(String, Vec<(f64, Vec<T>)>)>;

/// Per group label, points (depth, value, low, high).
pub type Curves = Vec<(String, Vec<(f64, f64, f64, f64)>)>;

/// The cells grouped by width × activation (a label each, widths in numeric order) and, within
/// a group, by depth: label → [(depth, the cells' items)], with `item` mapping a cell to what
/// the caller needs (None leaves it out).
pub fn grouped<'a, T>(cells: &'a [Cell], item: impl Fn(&'a Cell) -> Option<T>) -> Grouped<T> {
    type Key = (Option<String>, u64, String);
    let mut groups: BTreeMap<Key, BTreeMap<i64, Vec<T>>> = BTreeMap::new();
    for c in cells {
        // widths sort numerically when they are numbers ("[64, 64]" and others as text)
        let wkey = c.width.parse::<u64>().unwrap_or(u64::MAX);
        let entry = groups
            .entry((c.activation.clone(), wkey, c.width.clone()))
            .or_default()
            .entry((c.depth * 1000.0).round() as i64)
            .or_default();
        if let Some(x) = item(c) {
            entry.push(x);
        }
    }
    groups
        .into_iter()
        .map(|((act, _, width), depths)| {
            let label = match act {
                Some(a) if !a.is_empty() => format!("width {width}, {a}"),
                _ => format!("width {width}"),
            };
            let depths = depths
                .into_iter()
                .map(|(d, xs)| (d as f64 / 1000.0, xs))
                .collect();
            (label, depths)
        })
        .collect()
}

/// The KL bound on the expected 0-1 gap from the seeds of each group and depth (DESIGN §2.3):
/// per layer the Student-t 95% interval of the mean debiased divergence across seeds, the bound
/// sqrt(hi/2), and its minimum over the layers whose interval lies above 0 (NaN where none
/// does) — as `kl_bound_seeds_min` in `aggregate.csv`.
pub fn seed_bounds(cells: &[Cell]) -> Curves {
    grouped(cells, Some)
        .into_iter()
        .map(|(label, depths)| {
            let pts = depths
                .into_iter()
                .map(|(d, cs)| {
                    let layers = cs.iter().map(|c| c.debiased.len()).max().unwrap_or(0);
                    let best = (0..layers)
                        .filter_map(|l| {
                            let xs: Vec<f64> = cs
                                .iter()
                                .map(|c| c.debiased.get(l).copied().unwrap_or(f64::NAN))
                                .collect();
                            let (lo, hi) = crate::stats::seed_interval(&xs, 0.95);
                            (lo > 0.0).then(|| (hi / 2.0).sqrt())
                        })
                        .fold(f64::NAN, f64::min);
                    (d, best, best, best)
                })
                .collect();
            (label, pts)
        })
        .collect()
}

/// Mean and ± one standard deviation over seeds of `value`, per group and depth:
/// group label → [(depth, mean, mean − sd, mean + sd)].
pub fn by_group(cells: &[Cell], value: &str) -> Curves {
    grouped(cells, |c| Some(c.values[value]).filter(|v| v.is_finite()))
        .into_iter()
        .map(|(label, depths)| {
            let pts = depths
                .into_iter()
                .map(|(d, v)| {
                    let n = v.len() as f64;
                    if v.is_empty() {
                        return (d, f64::NAN, f64::NAN, f64::NAN);
                    }
                    let mean = v.iter().sum::<f64>() / n;
                    let sd = if v.len() > 1 {
                        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                    } else {
                        f64::NAN
                    };
                    (d, mean, mean - sd, mean + sd)
                })
                .collect();
            (label, pts)
        })
        .collect()
}

pub fn depth_ticks(cells: &[Cell]) -> Vec<f64> {
    let mut d: Vec<f64> = cells.iter().map(|c| c.depth).collect();
    d.sort_by(f64::total_cmp);
    d.dedup();
    d
}

/// The sweep's figures from its `summary.csv` (paths relative to the sweep folder).
pub fn sweep_figures(csv_bytes: &[u8], title: &str) -> Result<Vec<Figure>, String> {
    let cells = read_sweep(csv_bytes)?;
    guarded(|| {
        let ticks = depth_ticks(&cells);
        let note = "mean over seeds where a layer resolved, ± 1 sd; seeds-together: aggregate.csv kl_bound_seeds_min".to_string();
        let panel = |title: &str, y_desc: &str, bound: &str, bound_name: &str, gap: &str| {
            let mut series = Vec::new();
            let bounds = by_group(&cells, bound);
            let gaps = by_group(&cells, gap);
            for (i, ((label, b), (_, g))) in bounds.into_iter().zip(gaps).enumerate() {
                let color = CYCLE[i % CYCLE.len()];
                series.push(Series::other(
                    format!("{bound_name}, {label}"),
                    color,
                    Kind::Errors {
                        points: b,
                        dashed: false,
                    },
                ));
                series.push(Series::other(
                    format!("measured gap, {label}"),
                    color,
                    Kind::Errors {
                        points: g,
                        dashed: true,
                    },
                ));
            }
            Panel {
                title: title.into(),
                x_desc: "depth L (layers after the input)".into(),
                y_desc: y_desc.into(),
                x_ticks: ticks.clone(),
                x_names: Vec::new(),
                log_if_span: 20.0,
                series,
                legend_note: Some(note.clone()),
            }
        };
        let mut panels = [
            panel(
                "0-1 loss: smallest KL bound over resolved layers vs measured gap",
                "0-1 loss",
                "kl_bound_min",
                "KL bound",
                "gap_zero_one",
            ),
            panel(
                "Clipped cross-entropy: W1 bound at the funnel (resolved layers) vs measured gap",
                "clipped cross-entropy",
                "w1_bound_min",
                "W1 bound",
                "gap_ce_clipped",
            ),
        ];
        // the bound on the expected gap from the seeds together (dotted markers, one per
        // group and depth where a layer's across-seed interval lies above 0)
        for (i, (label, pts)) in seed_bounds(&cells).into_iter().enumerate() {
            if pts.iter().any(|p| p.1.is_finite()) {
                panels[0].series.push(Series::other(
                    format!("seeds-together bound, {label}"),
                    CYCLE[i % CYCLE.len()],
                    Kind::Errors {
                        points: pts,
                        dashed: true,
                    },
                ));
            }
        }
        let height = 250 + 500 * panels.len() as u32;
        let bounds = render(
            "plots/bounds_vs_depth",
            (1150, height.max(900)),
            &Canvas::Panels {
                title: format!("funnel sweep · {title} · bounds and gaps against depth"),
                panels: &panels,
            },
        )?;
        let mut series: Vec<Series> = by_group(&cells, "funnel_layer")
            .into_iter()
            .enumerate()
            .map(|(i, (label, pts))| {
                Series::other(
                    label,
                    CYCLE[i % CYCLE.len()],
                    Kind::Errors {
                        points: pts,
                        dashed: false,
                    },
                )
            })
            .collect();
        series.push(Series::dashed(
            "last layer (logits) = depth",
            GREY,
            ticks.iter().map(|&d| (d, d)).collect(),
        ));
        series.push(Series::other(
            "",
            RGBColor(170, 170, 170),
            Kind::HLine {
                y: 0.0,
                dashed: false,
            },
        ));
        let funnel = Panel {
            title: "Funnel layer (argmin of the W1 bound) against depth".into(),
            x_desc: "depth L (layers after the input)".into(),
            y_desc: "funnel layer (0 = input)".into(),
            x_ticks: ticks.clone(),
            x_names: Vec::new(),
            log_if_span: f64::INFINITY,
            series,
            legend_note: Some(note.clone()),
        };
        let funnel_fig = render(
            "plots/funnel_vs_depth",
            (1100, 560),
            &Canvas::Panels {
                title: format!("funnel sweep · {title} · where the funnel sits"),
                panels: std::slice::from_ref(&funnel),
            },
        )?;
        Ok(vec![bounds, funnel_fig])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_groups_average_over_seeds() {
        let csv = "cell,status,seed,depth,width,gap_zero_one,gap_ce_clipped,kl_bound_min,w1_bound_min,funnel_layer\n\
                   a,ok,0,2,16,0.1,0.2,0.3,1.0,2\n\
                   b,ok,1,2,16,0.3,0.2,0.5,3.0,1\n\
                   c,failed,2,2,16,,,,,\n\
                   d,ok,0,3,16,0.1,0.2,0.3,1.0,3\n";
        let cells = read_sweep(csv.as_bytes()).unwrap();
        assert_eq!(cells.len(), 3);
        let g = by_group(&cells, "w1_bound_min");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].0, "width 16");
        let (d, mean, lo, hi) = g[0].1[0];
        assert_eq!((d, mean), (2.0, 2.0));
        assert!((hi - mean - 2f64.sqrt()).abs() < 1e-12 && (mean - lo - 2f64.sqrt()).abs() < 1e-12);
        assert!(g[0].1[1].2.is_nan(), "one seed: no error bar");
    }
}
