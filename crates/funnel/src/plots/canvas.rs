//! A small plotting library over plotters: a figure is panels of series (lines, bands,
//! markers, dashes) with a legend column beside each chart, drawn the same way to PNG and SVG.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::text::num;

use super::*;

// ---------------------------------------------------------------- palette

pub const BLUE_: RGBColor = RGBColor(31, 119, 180);
pub const LIGHT_BLUE: RGBColor = RGBColor(120, 170, 215);
pub const ORANGE: RGBColor = RGBColor(230, 115, 0);
pub const GREEN_: RGBColor = RGBColor(44, 160, 44);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const DARK: RGBColor = RGBColor(30, 30, 30);
pub const RED_: RGBColor = RGBColor(200, 30, 30);
/// Lines of a sweep figure, one per width (and activation).
pub const CYCLE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 115, 0),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

// ---------------------------------------------------------------- a panel, described

#[derive(Clone)]
pub enum Kind {
    /// Points joined by a line, a marker on each.
    Line { dashed: bool },
    /// The area between `lo` and `hi` (each point is (x, lo, hi)).
    Band(Vec<(f64, f64, f64)>),
    /// A horizontal line across the panel at y.
    HLine { y: f64, dashed: bool },
    /// A vertical line at x.
    VLine(f64),
    /// Mean with an error bar at each point: (x, mean, lo, hi).
    Errors {
        points: Vec<(f64, f64, f64, f64)>,
        dashed: bool,
    },
}

#[derive(Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub kind: Kind,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn line(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color,
            kind: Kind::Line { dashed: false },
            points,
        }
    }
    pub fn dashed(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series {
            kind: Kind::Line { dashed: true },
            ..Series::line(label, color, points)
        }
    }
    pub fn other(label: impl Into<String>, color: RGBColor, kind: Kind) -> Self {
        Series {
            label: label.into(),
            color,
            kind,
            points: Vec::new(),
        }
    }
    /// Every y this series draws (for the axis range).
    pub fn ys(&self) -> Vec<f64> {
        match &self.kind {
            Kind::Line { .. } => self.points.iter().map(|p| p.1).collect(),
            Kind::Band(b) => b.iter().flat_map(|p| [p.1, p.2]).collect(),
            Kind::HLine { y, .. } => vec![*y],
            Kind::VLine(_) => Vec::new(),
            Kind::Errors { points, .. } => points.iter().flat_map(|p| [p.1, p.2, p.3]).collect(),
        }
    }
}

pub struct Panel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// Integer ticks 0..=x_max (layers, depths) with this range.
    pub x_ticks: Vec<f64>,
    /// Names of the integer x positions 0, 1, … (a categorical axis); empty for plain numbers.
    pub x_names: Vec<String>,
    /// Use a log y-axis when every value is positive and they span more than this factor.
    pub log_if_span: f64,
    pub series: Vec<Series>,
    /// A line under the legend (e.g. what the error bars are).
    pub legend_note: Option<String>,
}

pub fn finite(v: &[f64]) -> impl Iterator<Item = f64> + '_ {
    v.iter().copied().filter(|y| y.is_finite())
}

/// The y-range of a panel and whether it is logarithmic.
pub fn y_range(p: &Panel) -> (f64, f64, bool) {
    let ys: Vec<f64> = p.series.iter().flat_map(|s| s.ys()).collect();
    let lo = finite(&ys).fold(f64::INFINITY, f64::min);
    let hi = finite(&ys).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0, false);
    }
    // log when the positive values span decades; values ≤ 0 (a bound clamped at 0, a negative
    // gap) cannot be drawn there and are named in the legend instead. The axis covers at most
    // five decades below the largest value.
    let plo = finite(&ys)
        .filter(|y| *y > 0.0)
        .fold(f64::INFINITY, f64::min);
    if hi > 0.0 && plo.is_finite() && hi / plo > p.log_if_span {
        return ((plo / 1.6).max(hi * 1e-5), hi * 1.6, true);
    }
    let pad = if hi > lo { 0.08 * (hi - lo) } else { 0.5 };
    let mut lo = lo - pad;
    if lo < 0.0 && ys.iter().all(|y| !y.is_finite() || *y >= 0.0) {
        lo = 0.0;
    }
    (lo, hi + pad, false)
}

/// A tick label: three significant digits without trailing zeros; 0 for rounding noise.
pub fn tick(y: f64, span: f64) -> String {
    if y.abs() < 1e-9 * span.abs() {
        return "0".into();
    }
    let s = num(y);
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Splits a polyline at points that cannot be drawn (non-finite; ≤ 0 on a log axis).
pub fn segments(points: &[(f64, f64)], log: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if y.is_finite() && (!log || y > 0.0) {
            out.last_mut().expect("non-empty").push((x, y));
        } else if !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

pub fn style(c: RGBColor, width: u32) -> ShapeStyle {
    ShapeStyle {
        color: c.to_rgba(),
        filled: true,
        stroke_width: width,
    }
}

/// A point's pixel position on the chart.
pub fn px<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    q: (f64, f64),
) -> (f64, f64) {
    let (a, b) = chart.backend_coord(&q);
    (a as f64, b as f64)
}

/// A dashed polyline as many short segments (the same look in PNG and SVG).
pub fn dashes(
    points: &[(f64, f64)],
    log: bool,
    to_px: impl Fn((f64, f64)) -> (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    // lengths in pixels; the pieces are returned in data coordinates
    const ON: f64 = 9.0;
    const OFF: f64 = 6.0;
    let mut out = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (to_px(w[0]), to_px(w[1]));
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let mut t = 0.0;
        while t < len {
            let t1 = (t + ON).min(len);
            let lerp = |t: f64| {
                let f = t / len;
                // straight in pixels: on a log axis y moves geometrically
                let y = if log {
                    (w[0].1.ln() + f * (w[1].1.ln() - w[0].1.ln())).exp()
                } else {
                    w[0].1 + f * (w[1].1 - w[0].1)
                };
                (w[0].0 + f * (w[1].0 - w[0].0), y)
            };
            out.push(vec![lerp(t), lerp(t1)]);
            t += ON + OFF;
        }
    }
    out
}

/// How many x labels to ask plotters for: one per integer in range, so that it never picks a
/// step below 1.
pub fn x_labels(ticks: &[f64]) -> usize {
    let (a, b) = (
        ticks.first().copied().unwrap_or(0.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    ((b - a).round() as usize + 1).clamp(2, 12)
}

pub fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

pub fn bold(size: f64) -> TextStyle<'static> {
    (FONT, size, FontStyle::Bold).into_font().into()
}

/// Draws one panel: the chart on the left, its legend in a column on the right (so it never
/// covers data).
pub fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Res
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w * 70 / 100);
    let (lo, hi, log) = y_range(p);
    let x0 = p.x_ticks.first().copied().unwrap_or(0.0) - 0.35;
    let x1 = p.x_ticks.last().copied().unwrap_or(1.0) + 0.35;
    if log {
        let chart = ChartBuilder::on(&plot)
            .caption(&p.title, bold(19.0))
            .margin(8)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (lo..hi).log_scale())?;
        finish_chart(chart, p, true)?;
    } else {
        let chart = ChartBuilder::on(&plot)
            .caption(&p.title, bold(19.0))
            .margin(8)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, lo..hi)?;
        finish_chart(chart, p, false)?;
    }
    draw_legend(&legend, p, log)
}

/// Strokes a polyline, dashed or solid, in `color` at width 2.
pub fn stroke<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    line: &[(f64, f64)],
    dashed: bool,
    log: bool,
    color: RGBColor,
) -> Res
where
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    if dashed {
        for d in dashes(line, log, |q| px(chart, q)) {
            chart.draw_series(std::iter::once(PathElement::new(d, style(color, 2))))?;
        }
    } else {
        chart.draw_series(LineSeries::new(line.to_vec(), style(color, 2)))?;
    }
    Ok(())
}

pub fn finish_chart<DB: DrawingBackend, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    p: &Panel,
    log: bool,
) -> Res
where
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let span = {
        let r = chart.y_range();
        r.end - r.start
    };
    let y_desc = if log {
        format!("{} (log scale)", p.y_desc)
    } else {
        p.y_desc.clone()
    };
    chart
        .configure_mesh()
        .x_desc(&p.x_desc)
        .y_desc(y_desc)
        // integer ticks only (layers, depths): at most one label per integer in range
        .x_labels(x_labels(&p.x_ticks))
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                let i = x.round() as i64;
                if p.x_names.is_empty() {
                    format!("{i}")
                } else {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| p.x_names.get(i).cloned())
                        .unwrap_or_default()
                }
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| tick(*y, span))
        .x_label_style(font(15.0))
        .y_label_style(font(15.0))
        .axis_desc_style(font(16.0))
        .y_labels(8)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let (xr, yr) = (chart.x_range(), chart.y_range());

    // bands first, lines over them
    for s in &p.series {
        if let Kind::Band(b) = &s.kind {
            let ok: Vec<&(f64, f64, f64)> = b
                .iter()
                .filter(|p| {
                    p.1.is_finite() && p.2.is_finite() && (!log || (p.1 > 0.0 && p.2 > 0.0))
                })
                .collect();
            // contiguous runs only (a missing interval breaks the band)
            let mut run: Vec<(f64, f64, f64)> = Vec::new();
            let mut runs = Vec::new();
            for q in b {
                if ok.iter().any(|o| std::ptr::eq(*o, q)) {
                    run.push(*q);
                } else if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            for run in runs {
                if run.len() == 1 {
                    let (x, l, h) = run[0];
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.06, l), (x + 0.06, h)],
                        s.color.mix(0.22).filled(),
                    )))?;
                    continue;
                }
                let mut poly: Vec<(f64, f64)> = run.iter().map(|p| (p.0, p.1)).collect();
                poly.extend(run.iter().rev().map(|p| (p.0, p.2)));
                chart.draw_series(std::iter::once(Polygon::new(
                    poly,
                    s.color.mix(0.22).filled(),
                )))?;
            }
        }
    }
    for s in &p.series {
        match &s.kind {
            Kind::Band(_) => {}
            Kind::Line { dashed } => {
                for seg in segments(&s.points, log) {
                    stroke(&mut chart, &seg, *dashed, log, s.color)?;
                    chart.draw_series(
                        seg.iter()
                            .map(|&(x, y)| Circle::new((x, y), 4, s.color.filled())),
                    )?;
                }
            }
            Kind::HLine { y, dashed } => {
                if y.is_finite() && (!log || *y > 0.0) {
                    let line = [(xr.start, *y), (xr.end, *y)];
                    stroke(&mut chart, &line, *dashed, log, s.color)?;
                }
            }
            Kind::VLine(x) => {
                stroke(
                    &mut chart,
                    &[(*x, yr.start), (*x, yr.end)],
                    true,
                    log,
                    s.color,
                )?;
            }
            Kind::Errors { points, dashed } => {
                let line: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
                for seg in segments(&line, log) {
                    stroke(&mut chart, &seg, *dashed, log, s.color)?;
                    // gaps (dashed) get squares, bounds circles
                    if *dashed {
                        chart.draw_series(seg.iter().map(|&p| {
                            EmptyElement::at(p)
                                + Rectangle::new([(-4, -4), (4, 4)], s.color.filled())
                        }))?;
                    } else {
                        chart.draw_series(
                            seg.iter().map(|&p| Circle::new(p, 4, s.color.filled())),
                        )?;
                    }
                }
                let bars = points.iter().filter(|p| {
                    p.2.is_finite() && p.3.is_finite() && p.3 > p.2 && (!log || p.2 > 0.0)
                });
                chart.draw_series(bars.map(|&(x, _, l, h)| {
                    ErrorBar::new_vertical(x, l, (l + h) / 2.0, h, style(s.color, 2), 10)
                }))?;
            }
        }
    }
    Ok(())
}

/// The legend: one entry per labelled series, in a column beside the chart.
pub fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel, log: bool) -> Res
where
    DB::ErrorType: 'static,
{
    let mut y = 46i32;
    let text = font(15.0);
    for s in p.series.iter().filter(|s| !s.label.is_empty()) {
        let c = s.color;
        let mid = y + 8;
        match &s.kind {
            Kind::Band(_) => {
                area.draw(&Rectangle::new(
                    [(8, y), (44, y + 16)],
                    c.mix(0.22).filled(),
                ))?;
            }
            Kind::Line { dashed } | Kind::Errors { dashed, .. } | Kind::HLine { dashed, .. } => {
                if *dashed {
                    for (a, b) in [(8, 18), (24, 34), (40, 44)] {
                        area.draw(&PathElement::new(vec![(a, mid), (b, mid)], style(c, 2)))?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(8, mid), (44, mid)], style(c, 2)))?;
                }
                match s.kind {
                    Kind::Errors { dashed: true, .. } => {
                        area.draw(&Rectangle::new([(22, mid - 4), (30, mid + 4)], c.filled()))?;
                    }
                    Kind::Line { .. } | Kind::Errors { .. } => {
                        area.draw(&Circle::new((26, mid), 4, c.filled()))?;
                    }
                    _ => {}
                }
            }
            Kind::VLine(_) => {
                for (a, b) in [(y, y + 6), (y + 10, y + 16)] {
                    area.draw(&PathElement::new(vec![(26, a), (26, b)], style(c, 2)))?;
                }
            }
        }
        let hidden = match &s.kind {
            Kind::HLine { y, .. } => !y.is_finite() || (log && *y <= 0.0),
            _ => false,
        };
        let some_hidden = log
            && matches!(s.kind, Kind::Line { .. } | Kind::Errors { .. })
            && s.ys().iter().any(|y| y.is_finite() && *y <= 0.0);
        let label = if hidden {
            format!("{} (≤ 0: not drawn)", s.label)
        } else if some_hidden {
            format!("{} (values ≤ 0 not drawn)", s.label)
        } else {
            s.label.clone()
        };
        // long labels wrap onto a second line
        let lines = wrap(&label, 30);
        for (i, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (52, y + i as i32 * 18),
                text.clone(),
            ))?;
        }
        y += 8 + 18 * lines.len().max(1) as i32;
    }
    if let Some(note) = &p.legend_note {
        y += 6;
        for line in wrap(note, 34) {
            area.draw(&Text::new(line, (8, y), font(13.0).color(&GREY)))?;
            y += 16;
        }
    }
    Ok(())
}

pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split(' ') {
        let cur = lines.last_mut().expect("non-empty");
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_cover_the_line_in_pieces() {
        let d = dashes(&[(0.0, 0.0), (30.0, 0.0)], false, |p| p);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], vec![(0.0, 0.0), (9.0, 0.0)]);
        assert_eq!(d[1], vec![(15.0, 0.0), (24.0, 0.0)]);
    }

    #[test]
    fn tick_labels_drop_trailing_zeros_and_rounding_noise() {
        assert_eq!(tick(0.5, 1.0), "0.5");
        assert_eq!(tick(100.0, 100.0), "100");
        assert_eq!(tick(-5.55e-17, 1.0), "0");
        assert_eq!(tick(0.0123, 1.0), "0.0123");
        assert_eq!(tick(12345.0, 1e5), "1.23e4");
    }

    #[test]
    fn segments_split_at_gaps() {
        let s = segments(
            &[(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, -1.0)],
            true,
        );
        assert_eq!(s, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0)]]);
    }
}
