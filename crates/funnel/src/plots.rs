//! Figures, as PNG and SVG, drawn with plotters without any system library: text goes through
//! `ab_glyph` with DejaVu Sans compiled into the binary (the `dejavu` crate), PNGs are encoded
//! by the pure-Rust `png` crate from an in-memory RGB buffer, SVGs are written to a string.
//!
//! Per run ([`run_figures`]): `plots/layers` — KL per layer with its CI band and null, W1 per
//! layer likewise, and the bounds against the measured gaps with the funnel layer marked — and
//! `plots/information_plane` when I(X;T_l) and I(T_l;Y) were measured on at least two layers.
//! Per sweep ([`sweep_figures`]): `plots/bounds_vs_depth` and `plots/funnel_vs_depth` from the
//! sweep's `summary.csv`.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Once;

use funnel_metrics::LayerRow;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

use crate::report::{num, Summary};
use serde::{Deserialize, Serialize};

type Res<T = ()> = Result<T, Box<dyn Error>>;

const FONT: &str = "sans-serif";

/// Registers the bundled font under the family every figure uses.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // the bytes are a known-good TTF compiled in: failure here is a build defect
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans does not parse"));
        register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans Bold does not parse"));
    });
}

/// One figure, rendered both ways; `name` is the path without extension, e.g. `plots/layers`.
pub struct Figure {
    pub name: String,
    pub png: Vec<u8>,
    pub svg: String,
}

impl Figure {
    /// `(path, bytes)` of both files.
    pub fn files(&self) -> [(String, &[u8]); 2] {
        [
            (format!("{}.png", self.name), &self.png[..]),
            (format!("{}.svg", self.name), self.svg.as_bytes()),
        ]
    }
}

// ---------------------------------------------------------------- palette

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const LIGHT_BLUE: RGBColor = RGBColor(120, 170, 215);
const ORANGE: RGBColor = RGBColor(230, 115, 0);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const GREY: RGBColor = RGBColor(120, 120, 120);
const DARK: RGBColor = RGBColor(30, 30, 30);
const RED_: RGBColor = RGBColor(200, 30, 30);
/// Lines of a sweep figure, one per width (and activation).
const CYCLE: [RGBColor; 8] = [
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
enum Kind {
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
struct Series {
    label: String,
    color: RGBColor,
    kind: Kind,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn line(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color,
            kind: Kind::Line { dashed: false },
            points,
        }
    }
    fn dashed(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series {
            kind: Kind::Line { dashed: true },
            ..Series::line(label, color, points)
        }
    }
    fn other(label: impl Into<String>, color: RGBColor, kind: Kind) -> Self {
        Series {
            label: label.into(),
            color,
            kind,
            points: Vec::new(),
        }
    }
    /// Every y this series draws (for the axis range).
    fn ys(&self) -> Vec<f64> {
        match &self.kind {
            Kind::Line { .. } => self.points.iter().map(|p| p.1).collect(),
            Kind::Band(b) => b.iter().flat_map(|p| [p.1, p.2]).collect(),
            Kind::HLine { y, .. } => vec![*y],
            Kind::VLine(_) => Vec::new(),
            Kind::Errors { points, .. } => points.iter().flat_map(|p| [p.1, p.2, p.3]).collect(),
        }
    }
}

struct Panel {
    title: String,
    x_desc: String,
    y_desc: String,
    /// Integer ticks 0..=x_max (layers, depths) with this range.
    x_ticks: Vec<f64>,
    /// Names of the integer x positions 0, 1, … (a categorical axis); empty for plain numbers.
    x_names: Vec<String>,
    /// Use a log y-axis when every value is positive and they span more than this factor.
    log_if_span: f64,
    series: Vec<Series>,
    /// A line under the legend (e.g. what the error bars are).
    legend_note: Option<String>,
}

fn finite(v: &[f64]) -> impl Iterator<Item = f64> + '_ {
    v.iter().copied().filter(|y| y.is_finite())
}

/// The y-range of a panel and whether it is logarithmic.
fn y_range(p: &Panel) -> (f64, f64, bool) {
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
fn tick(y: f64, span: f64) -> String {
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
fn segments(points: &[(f64, f64)], log: bool) -> Vec<Vec<(f64, f64)>> {
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

fn style(c: RGBColor, width: u32) -> ShapeStyle {
    ShapeStyle {
        color: c.to_rgba(),
        filled: true,
        stroke_width: width,
    }
}

/// A point's pixel position on the chart.
fn px<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    q: (f64, f64),
) -> (f64, f64) {
    let (a, b) = chart.backend_coord(&q);
    (a as f64, b as f64)
}

/// A dashed polyline as many short segments (the same look in PNG and SVG).
fn dashes(
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
fn x_labels(ticks: &[f64]) -> usize {
    let (a, b) = (
        ticks.first().copied().unwrap_or(0.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    ((b - a).round() as usize + 1).clamp(2, 12)
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

fn bold(size: f64) -> TextStyle<'static> {
    (FONT, size, FontStyle::Bold).into_font().into()
}

/// Draws one panel: the chart on the left, its legend in a column on the right (so it never
/// covers data).
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Res
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
fn stroke<DB: DrawingBackend, Y>(
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

fn finish_chart<DB: DrawingBackend, Y>(
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
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel, log: bool) -> Res
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

fn wrap(s: &str, width: usize) -> Vec<String> {
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

// ---------------------------------------------------------------- rendering

/// What to draw on a whole canvas.
enum Canvas<'a> {
    /// A title over panels stacked vertically.
    Panels {
        title: String,
        panels: &'a [Panel],
    },
    Plane(&'a Plane),
}

fn draw_canvas<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Canvas) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match c {
        Canvas::Panels { title, panels } => {
            let (_, h) = root.dim_in_pixel();
            let (head, body) = root.split_vertically(40);
            head.draw(&Text::new(title.clone(), (14, 12), bold(18.0)))?;
            let each = (h - 40) / panels.len().max(1) as u32;
            let mut rest = body;
            for p in panels.iter() {
                let (this, next) = rest.split_vertically(each);
                draw_panel(&this, p)?;
                rest = next;
            }
        }
        Canvas::Plane(plane) => draw_plane(&root, plane)?,
    }
    root.present()?;
    Ok(())
}

fn render(name: &str, size: (u32, u32), c: &Canvas) -> Res<Figure> {
    fonts();
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    draw_canvas(
        BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(),
        c,
    )?;
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&rgb)?;
    }
    let mut svg = String::new();
    draw_canvas(
        SVGBackend::with_string(&mut svg, size).into_drawing_area(),
        c,
    )?;
    Ok(Figure {
        name: name.into(),
        png: png_bytes,
        svg,
    })
}

/// Runs `f`, turning a panic inside plotters into an error: a figure must never lose a run.
fn guarded<T>(f: impl FnOnce() -> Res<T>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic while drawing".into())),
    }
}

// ---------------------------------------------------------------- per run

/// Whether the run has an information plane: I(X;T) and I(T;Y) finite on at least two layers.
pub fn has_information_plane(rows: &[LayerRow]) -> bool {
    plane_points(rows).len() >= 2
}

/// (layer, I(X;T) with CI, I(T;Y) with CI) of the layers where both are finite.
fn plane_points(rows: &[LayerRow]) -> Vec<(usize, [f64; 3], [f64; 3])> {
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

fn layers_figure(s: &Summary) -> Res<Figure> {
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
struct Plane {
    title: String,
    /// (layer, [I(X;T), lo, hi], [I(T;Y), lo, hi])
    points: Vec<(usize, [f64; 3], [f64; 3])>,
    /// ln(classes): the most I(T;Y) can be (H(Y) for uniform labels).
    h_y: f64,
    /// ln(points): the most a plug-in I(X;T) can be.
    saturation: f64,
}

fn plane_figure(s: &Summary) -> Res<Figure> {
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

fn draw_plane<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Plane) -> Res
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

// ---------------------------------------------------------------- per sweep

/// One cell of a sweep's `summary.csv`.
#[derive(Debug, Clone)]
struct Cell {
    depth: f64,
    width: String,
    activation: Option<String>,
    values: BTreeMap<&'static str, f64>,
    /// `kl_debiased_l0…` (label term + excess per layer), empty for summaries written before
    /// the size-matched null.
    debiased: Vec<f64>,
}

const SWEEP_VALUES: [&str; 5] = [
    "gap_zero_one",
    "gap_ce_clipped",
    "kl_bound_min",
    "w1_bound_min",
    "funnel_layer",
];

/// Reads a sweep's `summary.csv` (columns `cell, status, seed, depth, width,
/// model.activation` (optional), `gap_zero_one, gap_ce_clipped, kl_bound_min, w1_bound_min,
/// funnel_layer`); rows whose status is not `ok` are left out.
fn read_sweep(csv_bytes: &[u8]) -> Result<Vec<Cell>, String> {
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
type Grouped<T> = Vec<(String, Vec<(f64, Vec<T>)>)>;

/// Per group label, points (depth, value, low, high).
type Curves = Vec<(String, Vec<(f64, f64, f64, f64)>)>;

/// The cells grouped by width × activation (a label each, widths in numeric order) and, within
/// a group, by depth: label → [(depth, the cells' items)], with `item` mapping a cell to what
/// the caller needs (None leaves it out).
fn grouped<'a, T>(cells: &'a [Cell], item: impl Fn(&'a Cell) -> Option<T>) -> Grouped<T> {
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
fn seed_bounds(cells: &[Cell]) -> Curves {
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
                            let (lo, hi) = crate::sweep::seed_interval(&xs, 0.95);
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
fn by_group(cells: &[Cell], value: &str) -> Curves {
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

fn depth_ticks(cells: &[Cell]) -> Vec<f64> {
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

// ---------------------------------------------------------------- study figures

/// A figure a study asks for (`[[figure]]` in the study TOML): columns of `summary.csv`
/// against one column, averaged over seeds, one line per y column and `group` value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    /// File name under `plots/` (letters, digits, `_`, `-`).
    pub name: String,
    pub title: String,
    /// The x column (an axis or any numeric column); its distinct values are equally spaced,
    /// in numeric order (a doubling n is a log axis).
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    /// The y columns, one line each.
    pub y: Vec<String>,
    /// Legend names of the y columns (default: the column names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// y columns drawn dashed with square markers (e.g. the measured gaps beside bounds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dashed: Vec<String>,
    /// One line per value of this column (e.g. a width axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// Force a log (true) or linear (false) y axis; default: log when positive values span
    /// more than a factor 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_y: Option<bool>,
    /// A horizontal reference line at this y (e.g. 0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hline: Option<f64>,
    /// Only rows whose column has this value (as written in summary.csv), e.g.
    /// `select = { "data.n_train" = "200" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub select: BTreeMap<String, String>,
}

impl FigureSpec {
    /// Checks what can be checked without the data; the message names the figure and key.
    pub fn validate(&self, i: usize) -> Result<(), String> {
        let at = format!("figure[{i}]");
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{at}.name: `{}` must be letters, digits, `_` or `-` (it names a file)",
                self.name
            ));
        }
        if self.y.is_empty() {
            return Err(format!(
                "{at}.y: needs at least one column (with x = \"layer\": column prefixes such as \"w1_bound_l\")"
            ));
        }
        if !self.labels.is_empty() && self.labels.len() != self.y.len() {
            return Err(format!(
                "{at}.labels: {} labels for {} y columns",
                self.labels.len(),
                self.y.len()
            ));
        }
        if let Some(d) = self.dashed.iter().find(|d| !self.y.contains(d)) {
            return Err(format!("{at}.dashed: `{d}` is not one of the y columns"));
        }
        Ok(())
    }
}

/// The numbers of a value as summary.csv writes it: `0.5` → [0.5], `[32, 4]` → [32, 4];
/// None when any part is not a number.
fn numbers(v: &str) -> Option<Vec<f64>> {
    v.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok())
        .collect()
}

/// Orders distinct values numerically when they are all numbers or lists of numbers (compared
/// element by element), else as text.
fn ordered(values: impl Iterator<Item = String>) -> Vec<String> {
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
fn mean_band(v: &[f64]) -> (f64, f64, f64) {
    let (mean, sd) = crate::sweep::mean_std(v);
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
    fn a_panic_while_drawing_is_an_error_not_a_crash() {
        let r: Result<(), String> = guarded(|| panic!("no room for the legend"));
        assert_eq!(r.unwrap_err(), "no room for the legend");
        let r: Result<(), String> = guarded(|| Err("bad".into()));
        assert_eq!(r.unwrap_err(), "bad");
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
