//! A run's figures: `plots/layers` and `plots/information_plane`.

use funnel_metrics::LayerRow;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::Summary;
use crate::text::num;

use super::canvas::*;
use super::*;

// ---------------------------------------------------------------- per run

/// Whether the run has an information plane: I(X;T) and I(T;Y) finite on at least two layers.
pub fn has_information_plane(rows: &[LayerRow]) -> bool {
    plane_points(rows).len() >= 2
}

/// (layer, I(X;T) with CI, I(T;Y) with CI) of the layers where both are finite.
pub fn plane_points(rows: &[LayerRow]) -> Vec<(usize, [f64; 3], [f64; 3])> {
    rows.iter()
        .filter_map(|r| {
            let (xt, ty) = (r.mi_xt.as_ref()?, r.mi_ty.as_ref()?);
            (xt.value.is_finite() && ty.value.is_finite()).then_some((
                r.layer,
                [xt.value, xt.lo, xt.hi],
                [ty.value, ty.lo, ty.hi],
            ))
        })
        .collect()
}

/// The files of a run's figures (paths relative to the run folder). Nothing for a run without
/// layers (diverged training).
pub fn run_figures(summary: &Summary) -> Result<Vec<Figure>, String> {
    if summary.layers.is_empty() {
        return Ok(Vec::new());
    }
    guarded(|| {
        let mut out = vec![layers_figure(summary)?];
        if has_information_plane(&summary.layers) {
            out.push(plane_figure(summary)?);
        }
        Ok(out)
    })
}

pub fn layers_figure(s: &Summary) -> Res<Figure> {
    let rows = &s.layers;
    let xs: Vec<f64> = rows.iter().map(|r| r.layer as f64).collect();
    let pts = |f: fn(&LayerRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.layer as f64, f(r))).collect()
    };
    let band = |f: fn(&LayerRow) -> (f64, f64)| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .map(|r| {
                let (l, h) = f(r);
                (r.layer as f64, l, h)
            })
            .collect()
    };
    let m = s.measurement.as_ref();
    let pct = m.map_or(95.0, |m| (m.confidence * 100.0).round());
    let clip = m.map_or(f64::NAN, |m| m.ce_clip);
    let funnel = s.funnel_layer.map(|l| {
        Series::other(
            format!("funnel: layer {l} (smallest W1 bound, resolved layers)"),
            RED_,
            Kind::VLine(l as f64),
        )
    });
    let kl_est = m.map_or(String::new(), |m| m.kl_estimator.clone());
    let kl = Panel {
        title: "KL divergence between train and test representations".into(),
        x_desc: "layer (0 = input)".into(),
        y_desc: "KL (nats)".into(),
        x_ticks: xs.clone(),
        x_names: Vec::new(),
        log_if_span: f64::INFINITY,
        series: vec![
            Series::other(
                format!("{pct}% CI"),
                BLUE_,
                Kind::Band(band(|r| (r.kl.lo, r.kl.hi))),
            ),
            Series::line("KL estimate D_l", BLUE_, pts(|r| r.kl.value)),
            Series::dashed("size-matched null: mean", GREY, pts(|r| r.kl.null)),
            Series::dashed(
                "null: 95% quantile",
                RGBColor(190, 190, 190),
                pts(|r| r.kl.null_q95),
            ),
            Series::other(
                "",
                RGBColor(170, 170, 170),
                Kind::HLine {
                    y: 0.0,
                    dashed: false,
                },
            ),
        ],
        legend_note: Some(format!("estimator: {kl_est}")),
    };
    let mut w1_series = vec![
        Series::other(
            format!("{pct}% CI"),
            ORANGE,
            Kind::Band(band(|r| (r.w1.lo, r.w1.hi))),
        ),
        Series::line("W1 estimate W_l", ORANGE, pts(|r| r.w1.value)),
        Series::dashed("size-matched null: mean (floor)", GREY, pts(|r| r.w1.null)),
        Series::dashed(
            "null: 95% quantile",
            RGBColor(190, 190, 190),
            pts(|r| r.w1.null_q95),
        ),
    ];
    w1_series.extend(funnel.clone());
    let w1 = Panel {
        title: "W1 distance between train and test representations".into(),
        x_desc: "layer (0 = input)".into(),
        y_desc: "W1".into(),
        x_ticks: xs.clone(),
        x_names: Vec::new(),
        log_if_span: 20.0,
        series: w1_series,
        legend_note: m.map(|m| format!("estimator: {}", m.w1_estimator)),
    };
    let (g01, gce) = s.gap.map_or((f64::NAN, f64::NAN), |g| {
        (g.zero_one, g.cross_entropy_clipped)
    });
    let mut b_series = vec![
        Series::line("KL bound, 0-1 loss", BLUE_, pts(|r| r.kl_bound)),
        Series::dashed(
            format!("KL bound, CE clipped at {}", num(clip)),
            GREEN_,
            pts(|r| r.kl_bound_ce),
        ),
        Series::line(
            format!("W1 bound ρ·W+c·TV, CE clipped at {}", num(clip)),
            ORANGE,
            pts(|r| r.w1_bound),
        ),
        Series::other(
            format!("measured gap, 0-1 loss: {}", num(g01)),
            BLUE_,
            Kind::HLine {
                y: g01,
                dashed: true,
            },
        ),
        Series::other(
            format!("measured gap, clipped CE: {}", num(gce)),
            DARK,
            Kind::HLine {
                y: gce,
                dashed: true,
            },
        ),
    ];
    b_series.extend(funnel);
    let bounds = Panel {
        title: "Generalization bounds per layer and the measured gap".into(),
        x_desc: "layer (0 = input)".into(),
        y_desc: "bound on the gap".into(),
        x_ticks: xs,
        x_names: Vec::new(),
        log_if_span: 20.0,
        series: b_series,
        legend_note: Some(
            "bounds from the upper ends simultaneous over the layers; read each against the gap line of its loss"
                .into(),
        ),
    };
    let title = format!(
        "funnel {} · {} · {} ({})",
        if s.source.is_some() { "measure" } else { "run" },
        s.name,
        s.run_id,
        s.model
            .dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("→")
    );
    let panels = [kl, w1, bounds];
    render(
        "plots/layers",
        (1100, 1350),
        &Canvas::Panels {
            title,
            panels: &panels,
        },
    )
}

/// The information plane of one run.
pub struct Plane {
    pub title: String,
    /// (layer, [I(X;T), lo, hi], [I(T;Y), lo, hi])
    pub points: Vec<(usize, [f64; 3], [f64; 3])>,
    /// ln(classes): the most I(T;Y) can be (H(Y) for uniform labels).
    pub h_y: f64,
    /// ln(points): the most a plug-in I(X;T) can be.
    pub saturation: f64,
}

pub fn plane_figure(s: &Summary) -> Res<Figure> {
    let points = plane_points(&s.layers);
    let n = s
        .layers
        .iter()
        .filter_map(|r| r.mi_xt.as_ref().map(|e| e.points_train))
        .max()
        .unwrap_or(0);
    let plane = Plane {
        title: format!("Information plane · {} · {}", s.name, s.run_id),
        points,
        h_y: (s.data.classes as f64).ln(),
        saturation: if n > 0 { (n as f64).ln() } else { f64::NAN },
    };
    render(
        "plots/information_plane",
        (1000, 700),
        &Canvas::Plane(&plane),
    )
}

pub fn draw_plane<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Plane) -> Res
where
    DB::ErrorType: 'static,
{
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w * 72 / 100);
    let xs: Vec<f64> = p
        .points
        .iter()
        .flat_map(|q| q.1)
        .filter(|v| v.is_finite())
        .collect();
    let ys: Vec<f64> = p
        .points
        .iter()
        .flat_map(|q| q.2)
        .filter(|v| v.is_finite())
        .collect();
    let mut xhi = xs.iter().copied().fold(0.0, f64::max);
    if p.saturation.is_finite() && p.saturation < xhi * 1.5 {
        xhi = xhi.max(p.saturation);
    }
    let yhi = ys.iter().copied().fold(p.h_y, f64::max);
    let ylo = ys.iter().copied().fold(0.0, f64::min);
    let xlo = xs.iter().copied().fold(0.0, f64::min);
    let mut chart = ChartBuilder::on(&plot)
        .caption(&p.title, bold(19.0))
        .margin(10)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(xlo..xhi * 1.08 + 1e-9, ylo..yhi * 1.1 + 1e-9)?;
    chart
        .configure_mesh()
        .x_desc("I(X; T_l) (nats)")
        .y_desc("I(T_l; Y) (nats)")
        .x_label_formatter(&|x| tick(*x, xhi))
        .y_label_formatter(&|y| tick(*y, yhi))
        .x_label_style(font(15.0))
        .y_label_style(font(15.0))
        .axis_desc_style(font(16.0))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;

    let (xr, yr) = (chart.x_range(), chart.y_range());
    for d in dashes(&[(xr.start, p.h_y), (xr.end, p.h_y)], false, |q| {
        px(&chart, q)
    }) {
        chart.draw_series(std::iter::once(PathElement::new(d, style(GREY, 2))))?;
    }
    if p.saturation.is_finite() && p.saturation <= xr.end {
        for d in dashes(
            &[(p.saturation, yr.start), (p.saturation, yr.end)],
            false,
            |q| px(&chart, q),
        ) {
            chart.draw_series(std::iter::once(PathElement::new(d, style(RED_, 2))))?;
        }
    }
    let line: Vec<(f64, f64)> = p.points.iter().map(|q| (q.1[0], q.2[0])).collect();
    chart.draw_series(LineSeries::new(line.clone(), style(BLUE_, 2)))?;
    for (l, x, y) in &p.points {
        if x[1].is_finite() && x[2].is_finite() {
            chart.draw_series(std::iter::once(ErrorBar::new_horizontal(
                y[0],
                x[1],
                x[0],
                x[2],
                style(LIGHT_BLUE, 1),
                8,
            )))?;
        }
        if y[1].is_finite() && y[2].is_finite() {
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                x[0],
                y[1],
                y[0],
                y[2],
                style(LIGHT_BLUE, 1),
                8,
            )))?;
        }
        chart.draw_series(std::iter::once(
            EmptyElement::at((x[0], y[0]))
                + Circle::new((0, 0), 5, BLUE_.filled())
                // labels of the rightmost points go below them, clear of the saturation line
                + Text::new(
                    format!("layer {l}"),
                    if x[0] > 0.75 * xr.end { (-24, 14) } else { (8, -20) },
                    font(15.0),
                ),
        ))?;
    }
    // legend column
    let text = font(15.0);
    let mut y = 56;
    legend.draw(&PathElement::new(
        vec![(8, y + 8), (44, y + 8)],
        style(BLUE_, 2),
    ))?;
    legend.draw(&Circle::new((26, y + 8), 5, BLUE_.filled()))?;
    legend.draw(&Text::new(
        "layers in order, with CIs",
        (52, y),
        text.clone(),
    ))?;
    y += 28;
    for (a, b) in [(8, 18), (24, 34), (40, 44)] {
        legend.draw(&PathElement::new(
            vec![(a, y + 8), (b, y + 8)],
            style(GREY, 2),
        ))?;
    }
    legend.draw(&Text::new(
        format!("H(Y) ≤ ln(classes) = {}", num(p.h_y)),
        (52, y),
        text.clone(),
    ))?;
    y += 28;
    if p.saturation.is_finite() && p.saturation <= xr.end {
        for (a, b) in [(y, y + 6), (y + 10, y + 16)] {
            legend.draw(&PathElement::new(vec![(26, a), (26, b)], style(RED_, 2)))?;
        }
        for (i, line) in wrap(
            &format!("ln(points) = {}: I(X;T) saturates here", num(p.saturation)),
            28,
        )
        .into_iter()
        .enumerate()
        {
            legend.draw(&Text::new(line, (52, y + 18 * i as i32), text.clone()))?;
        }
        y += 46;
    }
    for line in wrap(
        "I(X;T): mixture entropies over pre-noise points (noisy layers); I(T;Y): on the training cloud",
        34,
    ) {
        legend.draw(&Text::new(line, (8, y), font(13.0).color(&GREY)))?;
        y += 16;
    }
    Ok(())
}
