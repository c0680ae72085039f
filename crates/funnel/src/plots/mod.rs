//! Figures, as PNG and SVG, drawn with plotters without any system library: text goes through
//! `ab_glyph` with DejaVu Sans compiled into the binary (the `dejavu` crate), PNGs are encoded
//! by the pure-Rust `png` crate from an in-memory RGB buffer, SVGs are written to a string.
//!
//! * [`canvas`]: the small plotting library every figure uses (panels of series, legends,
//!   dashes, log axes);
//! * [`run`]: per run, `plots/layers` (KL and W1 per layer with interval band and null, the
//!   bounds against the measured gaps) and `plots/information_plane`;
//! * [`sweep`]: per sweep, `plots/bounds_vs_depth` and `plots/funnel_vs_depth`;
//! * [`study`]: the `[[figure]]`s a study file asks for;
//! * [`gibbs`]: `funnel gibbs`'s rate figure.
//!
//! Figures are values ([`Figure`]); writing them is `output`'s job.

pub mod canvas;
pub mod gibbs;
pub mod run;
pub mod study;
pub mod sweep;

pub use gibbs::{gibbs_budget_figure, gibbs_figure};
pub use run::{has_information_plane, run_figures};
pub use study::study_figures;
pub use sweep::sweep_figures;

use std::error::Error;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

use canvas::*;
use run::{draw_plane, Plane};

pub type Res<T = ()> = Result<T, Box<dyn Error>>;

pub const FONT: &str = "sans-serif";

/// Registers the bundled font under the family every figure uses.
pub fn fonts() {
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

// ---------------------------------------------------------------- rendering

/// What to draw on a whole canvas.
pub enum Canvas<'a> {
    /// A title over panels stacked vertically.
    Panels {
        title: String,
        panels: &'a [Panel],
    },
    Plane(&'a Plane),
}

pub fn draw_canvas<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Canvas) -> Res
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

pub fn render(name: &str, size: (u32, u32), c: &Canvas) -> Res<Figure> {
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
pub fn guarded<T>(f: impl FnOnce() -> Res<T>) -> Result<T, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_drawing_is_an_error_not_a_crash() {
        let r: Result<(), String> = guarded(|| panic!("no room for the legend"));
        assert_eq!(r.unwrap_err(), "no room for the legend");
        let r: Result<(), String> = guarded(|| Err("bad".into()));
        assert_eq!(r.unwrap_err(), "bad");
    }
}
