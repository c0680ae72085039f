//! Point clouds from files, for `funnel estimate`: CSV (one point per row), `.npy` (an array
//! of any numeric dtype, C order; one point per leading index), or one array of an `.npz`
//! (`FILE.npz:NAME`); and class labels the same way. Every problem is bad input naming the
//! file (and the line, for CSV, or the array); nothing here panics on what a file contains.

use std::io::Read;
use std::path::{Path, PathBuf};

use funnel_metrics::Points;
use funnel_train::data::MAX_ELEMENTS;

use crate::arrays::{self, Array, Data};

/// A cloud read from a file, and what a reader of an error message needs about it.
pub struct PointFile {
    pub points: Points,
    /// 1-based line of the first data row (CSV), for dimension-mismatch messages.
    pub first_line: Option<u64>,
}

/// A file argument: a path, and for an `.npz` the array in it (`FILE.npz:NAME`).
pub fn split_array(arg: &Path) -> (PathBuf, Option<String>) {
    let text = arg.to_string_lossy();
    if let Some(i) = text.find(".npz:") {
        let (file, name) = text.split_at(i + 4);
        return (PathBuf::from(file), Some(name[1..].to_string()));
    }
    (arg.to_path_buf(), None)
}

/// What a file holds, from its first bytes: `.npy`, `.npz` (zip), text (CSV) or neither.
enum Kind {
    Npy,
    Npz,
    Text,
}

fn kind(path: &Path) -> Result<Kind, String> {
    let file = path.display();
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| format!("{file}: cannot open: {e}"))?;
    if head.starts_with(b"\x93NUMPY") {
        Ok(Kind::Npy)
    } else if arrays::is_zip(&head) {
        Ok(Kind::Npz)
    } else if std::str::from_utf8(&head).is_ok()
        || std::str::from_utf8(&head[..head.len().saturating_sub(3)]).is_ok()
    {
        Ok(Kind::Text)
    } else {
        Err(format!(
            "{file}: not a CSV, .npy or .npz file (it is neither text nor a numpy array)"
        ))
    }
}

/// The array an argument names: a `.npy` file, or `FILE.npz:NAME` (the only array of an
/// `.npz` when it holds one).
fn read_array(arg: &Path) -> Result<Array, String> {
    let (path, name) = split_array(arg);
    match kind(&path)? {
        Kind::Npy => arrays::read_npy(&path),
        Kind::Npz => {
            let file = path.display();
            let mut all = arrays::read_npz(&path)?;
            let names = || {
                all.iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match name {
                Some(n) => match all.iter().position(|(m, _)| *m == n) {
                    Some(i) => Ok(all.swap_remove(i).1),
                    None => Err(format!("{file}: no array `{n}`; it holds {}", names())),
                },
                None if all.len() == 1 => Ok(all.remove(0).1),
                None => Err(format!(
                    "{file}: holds {} arrays ({}); name one as {file}:NAME",
                    all.len(),
                    names()
                )),
            }
        }
        Kind::Text => Err(format!("{}: not a .npy or .npz file", path.display())),
    }
}

/// Reads points: `.npy`, `FILE.npz:NAME` or CSV, by content.
pub fn read_points(arg: &Path) -> Result<PointFile, String> {
    let (path, name) = split_array(arg);
    if name.is_none() && matches!(kind(&path)?, Kind::Text) {
        return read_csv(&path);
    }
    let what = arg.display();
    let a = read_array(arg)?;
    if a.shape.is_empty() {
        return Err(format!(
            "{what}: a single value; expected points × dimensions"
        ));
    }
    let (n, d) = (a.rows() as usize, a.row_len().max(1) as usize);
    if n == 0 || a.is_empty() {
        return Err(format!("{what}: the array is empty (shape {:?})", a.shape));
    }
    let data = a
        .floats()
        .ok_or_else(|| format!("{what}: holds text (`{}`), not numbers", a.dtype))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "{what}: element [{}, {}] (0-based) is not finite in 32-bit floating point (NaN, ±inf or beyond ±3.4e38)",
            i / d,
            i % d
        ));
    }
    Ok(PointFile {
        points: Points::new(data, n, d),
        first_line: None,
    })
}

/// Most classes labels may name.
const MAX_LABEL: i64 = 10_000;

/// Reads class labels, one per point: a 1-D integer array (`.npy`, `FILE.npz:NAME`) or a CSV
/// with one integer per row.
pub fn read_labels(arg: &Path) -> Result<Vec<usize>, String> {
    let (path, name) = split_array(arg);
    let what = arg.display();
    let values: Vec<f64> = if name.is_none() && matches!(kind(&path)?, Kind::Text) {
        let f = read_csv(&path)?;
        if f.points.d != 1 {
            return Err(format!(
                "{what}: {} columns; labels are one integer per row",
                f.points.d
            ));
        }
        f.points.data.iter().map(|&x| f64::from(x)).collect()
    } else {
        let a = read_array(arg)?;
        if a.shape.len() != 1 {
            return Err(format!(
                "{what}: shape {:?}; labels are a 1-D array",
                a.shape
            ));
        }
        match &a.data {
            Data::Int(v) => v.iter().map(|&x| x as f64).collect(),
            _ => a
                .doubles()
                .ok_or_else(|| format!("{what}: holds text, not labels"))?,
        }
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            if y.fract() == 0.0 && (0.0..MAX_LABEL as f64).contains(&y) {
                Ok(y as usize)
            } else {
                Err(format!(
                    "{what}: label {y} at index {i}; labels are class indices 0..{}",
                    MAX_LABEL - 1
                ))
            }
        })
        .collect()
}

/// CSV: one point per row, numeric cells; the first row is a header when any of its cells is
/// not a number. `#` starts a comment line, cells are trimmed.
fn read_csv(path: &Path) -> Result<PointFile, String> {
    let file = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| format!("{file}: cannot open: {}", csv_message(&e)))?;
    let mut data: Vec<f32> = Vec::new();
    let mut d = 0usize;
    let mut n = 0usize;
    let mut first_line = None;
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| match e.position() {
            Some(p) => format!("{file}:{}: {}", p.line(), csv_message(&e)),
            None => format!("{file}: {}", csv_message(&e)),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if i == 0 && rec.iter().any(|c| c.parse::<f64>().is_err()) {
            continue; // a header
        }
        if first_line.is_none() {
            d = rec.len();
            first_line = Some(line);
        } else if rec.len() != d {
            return Err(format!(
                "{file}:{line}: expected {d} columns (as in the first data row, line {}), found {}",
                first_line.unwrap_or(0),
                rec.len()
            ));
        }
        if data.len() + d > MAX_ELEMENTS {
            return Err(format!(
                "{file}:{line}: more than {MAX_ELEMENTS} values; funnel keeps clouds in memory (4 GiB at most)"
            ));
        }
        for (j, cell) in rec.iter().enumerate() {
            let v: f64 = cell.parse().map_err(|_| {
                format!("{file}:{line}: column {}: `{cell}` is not a number", j + 1)
            })?;
            let f = v as f32;
            if !f.is_finite() {
                return Err(format!(
                    "{file}:{line}: column {}: `{cell}` is not finite in 32-bit floating point",
                    j + 1
                ));
            }
            data.push(f);
        }
        n += 1;
    }
    if n == 0 {
        return Err(format!("{file}: the file has no data rows"));
    }
    if d == 0 {
        return Err(format!("{file}: the rows have no columns"));
    }
    Ok(PointFile {
        points: Points::new(data, n, d),
        first_line,
    })
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 text ({err})"),
        _ => e.to_string(),
    }
}
