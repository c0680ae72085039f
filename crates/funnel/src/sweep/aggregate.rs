//! `aggregate.csv` (mean, sd and Student-t interval across seeds per configuration) and
//! `rankings.csv` (`super::rankings`, from `summary.csv`), with the sweep figures.

use std::path::Path;

use crate::error::{io_err, CliError};
use crate::results::sweep_dir::*;
use crate::results::write_atomic;
use crate::results::Status;
use crate::stats::*;

/// What [`write_aggregates`] reports: Failed when a cell failed; the lines for the terminal
/// (cells ok and failed, the rankings); warnings (figures that could not be drawn).
pub struct Aggregated {
    pub status: Status,
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// Writes summary.csv, aggregate.csv, rankings.csv and the figures for `cells` of a sweep
/// folder, and says what to print.
pub fn write_aggregates(
    dir: &Path,
    meta: &SweepMeta,
    cells: &[Cell],
) -> Result<Aggregated, CliError> {
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    let rows: Vec<Row> = cells.iter().filter_map(|c| read_row(dir, c)).collect();
    let layers = rows.iter().map(|r| r.cell.depth + 1).max().unwrap_or(0);
    let metrics = metric_columns(layers);
    let axis_keys: Vec<String> = meta
        .cells
        .first()
        .map(|c| {
            c.axes
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "depth" && k != "width")
                .collect()
        })
        .unwrap_or_default();
    let fmt_axes = |c: &Cell| -> Vec<String> {
        let mut v = vec![
            c.seed.to_string(),
            c.depth.to_string(),
            c.width.map(|w| w.to_string()).unwrap_or_default(),
        ];
        for k in &axis_keys {
            let val = c
                .axes
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            v.push(val);
        }
        v
    };
    // summary.csv
    let mut header: Vec<String> = ["cell", "status", "reason", "seed", "depth", "width"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(axis_keys.iter().cloned());
    header.extend(metrics.iter().cloned());
    let value = |r: &Row, m: &str| r.values.get(m).copied().unwrap_or(f64::NAN);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![r.cell.id.clone(), r.status.clone(), r.reason.clone()];
            v.extend(fmt_axes(&r.cell));
            v.extend(metrics.iter().map(|m| cell_text(value(r, m))));
            v
        })
        .collect();
    let summary_csv = csv_bytes(&header, &table);
    write_atomic(&dir.join("summary.csv"), &summary_csv)
        .map_err(io_err("cannot write summary.csv"))?;

    // aggregate.csv: per configuration, over seeds (ok cells only)
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in &rows {
        match groups.iter_mut().find(|(k, _)| *k == r.cell.config) {
            Some((_, g)) => g.push(r),
            None => groups.push((r.cell.config.clone(), vec![r])),
        }
    }
    let mut aheader: Vec<String> = ["config", "depth", "width"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    aheader.extend(axis_keys.iter().cloned());
    aheader.extend(["n_ok", "n_failed"].iter().map(|s| s.to_string()));
    for m in &metrics {
        aheader.push(format!("{m}_mean"));
        aheader.push(format!("{m}_std"));
        aheader.push(format!("{m}_lo"));
        aheader.push(format!("{m}_hi"));
    }
    // the bound on the expected gap from the seeds' mean debiased divergence (DESIGN §2.3):
    // sqrt(D^hi/2) with D^hi the upper end of the across-seed interval of the mean
    let layer_count = metrics
        .iter()
        .filter(|m| m.starts_with("kl_debiased_l"))
        .count();
    for i in 0..layer_count {
        aheader.push(format!("kl_bound_seeds_l{i}"));
    }
    aheader.push("kl_bound_seeds_min".into());
    aheader.push("kl_bound_seeds_min_layer".into());
    let atable: Vec<Vec<String>> = groups
        .iter()
        .map(|(k, g)| {
            let ok: Vec<&&Row> = g.iter().filter(|r| r.status == "ok").collect();
            let mut v = vec![k.clone()];
            v.extend(fmt_axes(&g[0].cell).into_iter().skip(1));
            v.push(ok.len().to_string());
            v.push((g.len() - ok.len()).to_string());
            let mut seed_bounds = Vec::new();
            for m in &metrics {
                let xs: Vec<f64> = ok.iter().map(|r| value(r, m)).collect();
                let (mean, std) = mean_std(&xs);
                let (lo, hi) = seed_interval(&xs, 0.95);
                v.push(cell_text(mean));
                v.push(cell_text(std));
                v.push(cell_text(lo));
                v.push(cell_text(hi));
                if m.starts_with("kl_debiased_l") {
                    // resolved across seeds when the interval lies above 0
                    let b = if hi > 0.0 {
                        (hi / 2.0).sqrt()
                    } else {
                        f64::NAN
                    };
                    seed_bounds.push((b, lo > 0.0));
                }
            }
            for (b, _) in &seed_bounds {
                v.push(cell_text(*b));
            }
            let best = seed_bounds
                .iter()
                .enumerate()
                .filter(|(_, (b, resolved))| *resolved && b.is_finite())
                .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
            v.push(cell_text(best.map_or(f64::NAN, |(_, (b, _))| *b)));
            v.push(cell_text(best.map_or(f64::NAN, |(i, _)| i as f64)));
            v
        })
        .collect();
    write_atomic(&dir.join("aggregate.csv"), &csv_bytes(&aheader, &atable))
        .map_err(io_err("cannot write aggregate.csv"))?;

    // rankings.csv: from summary.csv alone, as `funnel report` rewrites it
    let ranked = super::rankings::rankings(&summary_csv)
        .map_err(|e| CliError::internal(format!("rankings.csv from summary.csv: {e}")))?;
    write_atomic(&dir.join("rankings.csv"), &ranked.csv)
        .map_err(io_err("cannot write rankings.csv"))?;
    // the sweep figures (as `funnel report DIR` draws them); a drawing failure loses no data
    let figures = if meta.figures.is_empty() {
        crate::plots::sweep_figures(&summary_csv, &meta.name)
    } else {
        crate::plots::study_figures(&summary_csv, &meta.figures, &meta.name)
    };
    match figures {
        Ok(figures) => {
            crate::output::files::write_figures(&figures, |path, bytes| {
                write_atomic(&dir.join(path), bytes)
            })
            .map_err(|(path, e)| io_err(&format!("cannot write {path}"))(e))?;
        }
        Err(e) => warnings.push(format!("note: sweep figures not drawn: {e}")),
    }

    let ok = rows.iter().filter(|r| r.status == "ok").count();
    let failed = rows.len() - ok;
    let missing = cells.len() - rows.len();
    lines.push(format!(
        "{} cells: {} ok, {} failed{}",
        cells.len(),
        ok,
        failed,
        if missing > 0 {
            format!(", {missing} not run")
        } else {
            String::new()
        }
    ));
    for r in rows.iter().filter(|r| r.status != "ok") {
        lines.push(format!("  {} {}: {}", r.cell.id, r.status, r.reason.trim()));
    }
    lines.extend(ranked.lines);
    Ok(Aggregated {
        status: if failed > 0 {
            Status::Failed
        } else {
            Status::Ok
        },
        lines,
        warnings,
    })
}
