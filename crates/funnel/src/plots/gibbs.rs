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
