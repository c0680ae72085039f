//! `funnel gibbs`'s figure: the expected gap against n with its bounds.

use crate::text::num;

use super::canvas::*;
use super::*;

// ---------------------------------------------------------------- the Gibbs rate

/// `funnel gibbs`: E gap against n per γ (control-variate estimate, ± 2 se), the √2·γ/n bound
/// per γ (dashed) and the finite-parameter bound (grey, dashed); log y, n equally spaced.
pub fn gibbs_figure(r: &funnel_gibbs::GibbsResults) -> Result<Figure, String> {
    guarded(|| {
        let mut ns: Vec<usize> = r.rows.iter().map(|row| row.n).collect();
        ns.sort_unstable();
        ns.dedup();
        let pos = |n: usize| ns.iter().position(|&m| m == n).unwrap_or(0) as f64;
        let mut series = Vec::new();
        for (i, f) in r.fits.iter().enumerate() {
            let color = CYCLE[i % CYCLE.len()];
            let rows: Vec<_> = r.rows.iter().filter(|row| row.gamma == f.gamma).collect();
            series.push(Series::other(
                format!(
                    "γ = {}: E gap (slope {} ± {})",
                    num(f.gamma),
                    num(f.slope),
                    num(f.slope_stderr)
                ),
                color,
                Kind::Errors {
                    points: rows
                        .iter()
                        .map(|row| {
                            (
                                pos(row.n),
                                row.gap_cv_mean,
                                row.gap_cv_mean - 2.0 * row.gap_cv_stderr,
                                row.gap_cv_mean + 2.0 * row.gap_cv_stderr,
                            )
                        })
                        .collect(),
                    dashed: false,
                },
            ));
            series.push(Series::dashed(
                format!("γ = {}: bound √2·γ/n", num(f.gamma)),
                color,
                rows.iter()
                    .map(|row| (pos(row.n), row.bound_gibbs))
                    .collect(),
            ));
        }
        let mut finite: Vec<(f64, f64)> = r
            .rows
            .iter()
            .map(|row| (pos(row.n), row.bound_finite))
            .collect();
        finite.sort_by(|a, b| a.0.total_cmp(&b.0));
        finite.dedup_by(|a, b| a.0 == b.0);
        series.push(Series::dashed(
            format!(
                "finite-parameter bound sqrt(P·ln K/(2n)), P = {}, K = {}",
                r.params, r.levels
            ),
            GREY,
            finite,
        ));
        let panel = Panel {
            title: "Exact Gibbs posterior: expected generalization gap against n".into(),
            x_desc: "n (training examples; equally spaced positions)".into(),
            y_desc: "0-1 loss".into(),
            x_ticks: (0..ns.len()).map(|i| i as f64).collect(),
            x_names: ns.iter().map(|n| n.to_string()).collect(),
            log_if_span: 1.0,
            series,
            legend_note: Some(
                "gaps: control-variate estimate, error bars ± 2 se over training sets".into(),
            ),
        };
        render(
            "plots/gibbs_rate",
            (1150, 620),
            &Canvas::Panels {
                title: "funnel gibbs · the O(1/n) rate".into(),
                panels: std::slice::from_ref(&panel),
            },
        )
    })
}

// ---------------------------------------------------------------- fixed budget

/// `funnel gibbs` over architectures of one budget: one panel per γ with E gap against the
/// architecture (control-variate estimate ± 2 se, one series per n) and, dashed, both bounds with
/// Πη at the smallest n; a last panel with the posterior's population risk at the largest γ per
/// n, the smallest population risk in the weight set and the floor (1 − Πη)/2.
pub fn gibbs_budget_figure(r: &funnel_gibbs::BudgetResults) -> Result<Figure, String> {
    guarded(|| {
        let archs = &r.architectures;
        let names: Vec<String> = archs
            .iter()
            .map(|a| {
                format!(
                    "[{}] p{}",
                    a.architecture.widths_joined(","),
                    a.architecture.dropout
                )
            })
            .collect();
        let first = archs.first().ok_or("no architectures")?;
        let gammas: Vec<f64> = first.results.fits.iter().map(|f| f.gamma).collect();
        let mut ns: Vec<usize> = first.results.rows.iter().map(|row| row.n).collect();
        ns.sort_unstable();
        ns.dedup();
        let row_of = |a: &funnel_gibbs::ArchitectureResults, g: f64, n: usize| {
            a.results
                .rows
                .iter()
                .find(|row| row.gamma == g && row.n == n)
                .cloned()
        };
        let x_ticks: Vec<f64> = (0..archs.len()).map(|i| i as f64).collect();
        // Lines are broken where the dropout changes from one architecture to the next.
        let breaks: Vec<bool> = (0..archs.len())
            .map(|i| i > 0 && archs[i].architecture.dropout != archs[i - 1].architecture.dropout)
            .collect();
        let broken = |pts: Vec<(usize, f64)>| -> Vec<(f64, f64)> {
            let mut out = Vec::new();
            for (x, y) in pts {
                if breaks[x] {
                    out.push((x as f64 - 0.5, f64::NAN));
                }
                out.push((x as f64, y));
            }
            out
        };
        let mut panels = Vec::new();
        for &g in &gammas {
            let mut series = Vec::new();
            for (i, &n) in ns.iter().enumerate() {
                let mut points = Vec::new();
                for (x, a) in archs.iter().enumerate() {
                    if let Some(row) = row_of(a, g, n) {
                        if breaks[x] {
                            points.push((x as f64 - 0.5, f64::NAN, f64::NAN, f64::NAN));
                        }
                        points.push((
                            x as f64,
                            row.gap_cv_mean,
                            row.gap_cv_mean - 2.0 * row.gap_cv_stderr,
                            row.gap_cv_mean + 2.0 * row.gap_cv_stderr,
                        ));
                    }
                }
                series.push(Series::other(
                    format!("n = {n}: E gap"),
                    CYCLE[i % CYCLE.len()],
                    Kind::Errors {
                        points,
                        dashed: false,
                    },
                ));
            }
            let n0 = ns[0];
            let bound = |f: fn(&funnel_gibbs::GibbsRow) -> f64| -> Vec<(f64, f64)> {
                broken(
                    archs
                        .iter()
                        .enumerate()
                        .filter_map(|(x, a)| row_of(a, g, n0).map(|row| (x, f(&row))))
                        .collect(),
                )
            };
            series.push(Series::dashed(
                format!("n = {n0}: √2·γ·√Πη/n"),
                CYCLE[0],
                bound(|row| row.bound_gibbs),
            ));
            series.push(Series::dashed(
                format!("n = {n0}: finite-parameter bound sqrt(Πη·P·ln K/(2n))"),
                GREY,
                bound(|row| row.bound_finite),
            ));
            panels.push(Panel {
                title: format!(
                    "γ = {}: exact expected gap against the architecture",
                    num(g)
                ),
                x_desc: "architecture: hidden widths, dropout p (same P)".into(),
                y_desc: "0-1 loss".into(),
                x_ticks: x_ticks.clone(),
                x_names: names.clone(),
                log_if_span: 30.0,
                series,
                legend_note: Some(
                    "gaps: control-variate estimate, error bars ± 2 se over training sets; \
                     a log axis spans at most 5 decades, smaller gaps sit on its lower edge \
                     (report.md has every number)"
                        .into(),
                ),
            });
        }
        let g = *gammas.last().ok_or("no γ")?;
        let mut series = Vec::new();
        for (i, &n) in ns.iter().enumerate() {
            series.push(Series::line(
                format!("n = {n}: population risk of the posterior (γ = {})", num(g)),
                CYCLE[i % CYCLE.len()],
                broken(
                    archs
                        .iter()
                        .enumerate()
                        .filter_map(|(x, a)| row_of(a, g, n).map(|row| (x, row.test_loss)))
                        .collect(),
                ),
            ));
        }
        series.push(Series::dashed(
            "smallest population risk in the weight set",
            BLACK,
            broken(
                archs
                    .iter()
                    .enumerate()
                    .map(|(x, a)| (x, a.results.population_bayes_risk))
                    .collect(),
            ),
        ));
        series.push(Series::dashed(
            "floor (1 − Πη)/2 of every weight vector",
            GREY,
            broken(
                archs
                    .iter()
                    .enumerate()
                    .map(|(x, a)| (x, (1.0 - a.eta_product) / 2.0))
                    .collect(),
            ),
        ));
        panels.push(Panel {
            title: "What the posterior learns: population risk against the architecture".into(),
            x_desc: "architecture: hidden widths, dropout p (same P)".into(),
            y_desc: "0-1 loss".into(),
            x_ticks,
            x_names: names,
            log_if_span: f64::INFINITY,
            series,
            legend_note: None,
        });
        render(
            "plots/gibbs_budget",
            (
                (140 * archs.len() as u32 + 450).max(1250),
                420 * panels.len() as u32,
            ),
            &Canvas::Panels {
                title: "funnel gibbs · architectures of one parameter budget, with dropout".into(),
                panels: &panels,
            },
        )
    })
}
