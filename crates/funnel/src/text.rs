//! How numbers read in every table, report and figure: three significant digits, values
//! with their intervals, p-values, ratios and bounds.

use funnel_metrics::Estimate;

/// Three significant digits, scientific outside [1e-3, 1e4); `—` for NaN.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "—".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e4).contains(&a) {
        return format!("{x:.2e}");
    }
    let digits = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// `value [lo, hi]`, or `value` alone without an interval.
pub fn value_ci(value: f64, lo: f64, hi: f64) -> String {
    if lo.is_nan() || hi.is_nan() {
        num(value)
    } else {
        format!("{} [{}, {}]", num(value), num(lo), num(hi))
    }
}

/// The estimate with its interval.
pub fn with_ci(e: &Estimate) -> String {
    value_ci(e.value, e.lo, e.hi)
}

/// The excess (value − null mean) with its interval.
pub fn excess_ci(e: &Estimate) -> String {
    value_ci(e.excess, e.excess_lo, e.excess_hi)
}

pub fn ratio(bound: f64, gap: f64) -> Option<f64> {
    (gap > 0.0 && bound.is_finite()).then(|| bound / gap)
}

pub fn ratio_text(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{}× the measured gap", num(r)),
        None => "the measured gap is ≤ 0, so no ratio".into(),
    }
}

/// `p` with a `*` when the layer is resolved (Holm over the layers).
pub fn p_text(e: &Estimate) -> String {
    if e.p_value.is_nan() {
        return "—".into();
    }
    format!("{}{}", num(e.p_value), if e.resolved { "*" } else { "" })
}

/// A bound with `vacuous` when it is at least the loss's range.
pub fn bound_text(b: f64, vacuous: bool) -> String {
    if vacuous {
        format!("{} vacuous", num(b))
    } else {
        num(b)
    }
}

/// The one text-table printer (terminal and `report.md`'s code blocks): the first row is the
/// header, underlined with dashes; columns are separated by two spaces and right-aligned except
/// those in `left`; trailing spaces are trimmed. Hand-written rather than comfy-table: the
/// tables are plain aligned columns that must read the same in a terminal, a pipe and a
/// Markdown code block, with no borders to wrap.
pub fn grid(cells: &[Vec<String>], left: &[usize]) -> String {
    let cols = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if left.contains(&c) {
                    format!("{cell:<w$}", w = *w)
                } else {
                    format!("{cell:>w$}", w = *w)
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_aligns_columns_under_a_dashed_header() {
        let cells = vec![
            vec!["name".to_string(), "value".into()],
            vec!["kl".to_string(), "0.5".into()],
            vec!["w1 long".to_string(), "12.25".into()],
        ];
        assert_eq!(
            grid(&cells, &[0]),
            "name     value\n--------------\nkl         0.5\nw1 long  12.25\n"
        );
        assert_eq!(
            grid(&cells, &[]),
            "   name  value\n--------------\n     kl    0.5\nw1 long  12.25\n"
        );
    }

    #[test]
    fn numbers_have_three_significant_digits() {
        assert_eq!(num(0.012345), "0.0123");
        assert_eq!(num(1.23456), "1.23");
        assert_eq!(num(123.456), "123");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(12345.0), "1.23e4");
        assert_eq!(num(0.0001234), "1.23e-4");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "—");
        assert_eq!(num(-0.5), "-0.500");
    }
}
