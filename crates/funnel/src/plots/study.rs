//! The figures a study file asks for (`[[figure]]`).

use plotters::prelude::*;

use super::canvas::*;
use super::*;
use crate::figure_spec::FigureSpec;

// ---------------------------------------------------------------- study figures

/// The numbers of a value as summary.csv writes it: `0.5` → [0.5], `[32, 4]` → [32, 4];
/// None when any part is not a number.
pub fn numbers(v: &str) -> Option<Vec<f64>> {
    v.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok())
        .collect()
}

/// Orders distinct values numerically when they are all numbers or lists of numbers (compared
/// element by element), else as text.
pub fn ordered(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = values.collect();
    v.sort();
    v.dedup();
    if v.iter().all(|x| numbers(x).is_some()) {
        v.sort_by(|a, b| {
            let (a, b) = (numbers(a).unwrap(), numbers(b).unwrap());
            a.iter()
                .zip(&b)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(a.len().cmp(&b.len()))
        });
    }
    v
}

/// Mean and mean ± sd of the finite values (sd NaN for fewer than two).
pub fn mean_band(v: &[f64]) -> (f64, f64, f64) {
    let (mean, sd) = crate::stats::mean_std(v);
    (mean, mean - sd, mean + sd)
}

/// The figures a study asks for, from its `summary.csv` (rows with status `ok` only).
pub fn study_figures(
    csv_bytes: &[u8],
    specs: &[FigureSpec],
    study: &str,
) -> Result<Vec<Figure>, String> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let status = headers.iter().position(|h| h == "status");
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("summary.csv row {}: {e}", i + 2))?;
        if status.is_some_and(|s| rec.get(s).is_some_and(|v| v.trim() != "ok")) {
            continue;
        }
        rows.push(rec.iter().map(|v| v.trim().to_string()).collect());
    }
    if rows.is_empty() {
        return Err("summary.csv has no finished (status ok) cell".into());
    }
    let mut out = Vec::new();
    for spec in specs {
        let col = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                format!("figure `{}`: summary.csv has no column `{name}`", spec.name)
            })
        };
        let selected: Vec<(usize, &String)> = spec
            .select
            .iter()
            .map(|(k, v)| col(k).map(|c| (c, v)))
            .collect::<Result<_, _>>()?;
        let rows: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| selected.iter().all(|(c, v)| &&r[*c] == v))
            .collect();
        if rows.is_empty() {
            return Err(format!("figure `{}`: `select` leaves no row", spec.name));
        }
        let gc = spec.group.as_deref().map(col).transpose()?;
        // x = "layer": the y entries are column prefixes, x the layer index of each column
        let by_layer = spec.x == "layer";
        let layer_count = (0..)
            .take_while(|i| headers.iter().any(|h| h == format!("{}{i}", spec.y[0])))
            .count();
        if by_layer && layer_count == 0 {
            return Err(format!(
                "figure `{}`: summary.csv has no column `{}0`",
                spec.name, spec.y[0]
            ));
        }
        let xc = if by_layer { None } else { Some(col(&spec.x)?) };
        let xs: Vec<String> = match xc {
            Some(xc) => ordered(rows.iter().map(|r| r[xc].clone())),
            None => (0..layer_count).map(|i| i.to_string()).collect(),
        };
        // the column of y entry `yi` at x position `i`
        let ycol = |yi: usize, i: usize| -> Result<usize, String> {
            if by_layer {
                col(&format!("{}{i}", spec.y[yi]))
            } else {
                col(&spec.y[yi])
            }
        };
        for yi in 0..spec.y.len() {
            ycol(yi, 0)?;
        }
        let groups = match gc {
            Some(g) => ordered(rows.iter().map(|r| r[g].clone())),
            None => vec![String::new()],
        };
        let mut series = Vec::new();
        // one colour per group when there are groups (the y columns of a group differ by
        // dashes), else one per y column
        let color_of = |yi: usize, gi: usize| {
            if groups.len() > 1 {
                CYCLE[gi % CYCLE.len()]
            } else {
                CYCLE[yi % CYCLE.len()]
            }
        };
        for yi in 0..spec.y.len() {
            let label = spec.labels.get(yi).unwrap_or(&spec.y[yi]).clone();
            let dashed = spec.dashed.contains(&spec.y[yi]);
            for (gi, g) in groups.iter().enumerate() {
                let points: Vec<(f64, f64, f64, f64)> = xs
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let Ok(yc) = ycol(yi, i) else {
                            return (i as f64, f64::NAN, f64::NAN, f64::NAN);
                        };
                        let vals: Vec<f64> = rows
                            .iter()
                            .filter(|r| {
                                xc.is_none_or(|xc| &r[xc] == x) && gc.is_none_or(|c| &r[c] == g)
                            })
                            .map(|r| r[yc].parse::<f64>().unwrap_or(f64::NAN))
                            .collect();
                        let (m, lo, hi) = mean_band(&vals);
                        (i as f64, m, lo, hi)
                    })
                    .collect();
                let name = match (&spec.group, g.is_empty()) {
                    (Some(gname), false) => format!("{label}, {gname} = {g}"),
                    _ => label.clone(),
                };
                series.push(Series::other(
                    name,
                    color_of(yi, gi),
                    Kind::Errors { points, dashed },
                ));
            }
        }
        if let Some(y) = spec.hline {
            series.push(Series::other(
                "",
                RGBColor(170, 170, 170),
                Kind::HLine { y, dashed: false },
            ));
        }
        let panel = Panel {
            title: spec.title.clone(),
            x_desc: spec.x_label.clone().unwrap_or_else(|| {
                if by_layer {
                    "layer (0 = input)".into()
                } else {
                    spec.x.clone()
                }
            }),
            y_desc: spec.y_label.clone().unwrap_or_default(),
            x_ticks: (0..xs.len()).map(|i| i as f64).collect(),
            x_names: xs.clone(),
            log_if_span: match spec.log_y {
                Some(true) => 1.0,
                Some(false) => f64::INFINITY,
                None => 20.0,
            },
            series,
            legend_note: Some(
                "mean over seeds; error bars ± 1 sd (where there are ≥ 2 seeds)".into(),
            ),
        };
        out.push(guarded(|| {
            render(
                &format!("plots/{}", spec.name),
                (1150, 620),
                &Canvas::Panels {
                    title: format!("funnel study · {study}"),
                    panels: std::slice::from_ref(&panel),
                },
            )
        })?);
    }
    Ok(out)
}
