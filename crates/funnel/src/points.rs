//! Unlabelled point clouds from files, for `funnel estimate`: CSV (one point per row) or `.npy`
//! (a 2-D float32/float64 array in C order). Every problem is bad input naming the file (and the
//! line, for CSV); nothing here panics on what a file contains.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use funnel_metrics::Points;
use funnel_train::data::MAX_ELEMENTS;
use npyz::{DType, NpyFile, Order, TypeChar};

/// A cloud read from a file, and what a reader of an error message needs about it.
pub struct PointFile {
    pub points: Points,
    /// 1-based line of the first data row (CSV), for dimension-mismatch messages.
    pub first_line: Option<u64>,
}

/// Reads `path` as `.npy` when its extension says so, else as CSV.
pub fn read_points(path: &Path) -> Result<PointFile, String> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        read_npy(path).map(|points| PointFile {
            points,
            first_line: None,
        })
    } else {
        read_csv(path)
    }
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

/// Longest `.npy` header read: numpy writes a few hundred bytes, and `numpy.load` refuses
/// more than 10 000 by default (`max_header_size`).
const MAX_NPY_HEADER: u64 = 10_000;
/// Deepest bracket nesting in a `.npy` header: a plain array's header nests 2 deep, a
/// structured dtype's (refused later with its own message) 4.
const MAX_NPY_NESTING: usize = 4;

/// Checks a `.npy` file's preamble and header text before npyz parses them, then rewinds the
/// file. Both checks guard against what `cargo fuzz run points` found in npyz 0.9:
/// * npyz allocates the header length the preamble announces before reading it, so a version
///   2 or 3 preamble (a 4-byte length) made a 15-byte file allocate up to 4 GiB;
/// * its header parser (py_literal, a backtracking PEG) takes time exponential in the number
///   of unclosed brackets, so a 200-byte header of unbalanced `{` hung `funnel estimate`;
///   headers whose brackets do not nest properly, or nest deeper than [`MAX_NPY_NESTING`], are
///   refused here.
///
/// Files without the magic or too short for a preamble are left to npyz's own messages.
fn check_npy_header(f: &mut File, size: u64) -> Result<(), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let io = |e: std::io::Error| format!("cannot read: {e}");
    let mut pre = Vec::with_capacity(12);
    (&mut *f).take(12).read_to_end(&mut pre).map_err(io)?;
    let checked = (|| {
        if pre.len() < 10 || !pre.starts_with(MAGIC) {
            return Ok(());
        }
        let (prefix, header_len) = match pre[6] {
            1 => (10, u64::from(u16::from_le_bytes([pre[8], pre[9]]))),
            _ if pre.len() == 12 => (
                12,
                u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])),
            ),
            _ => return Ok(()),
        };
        if prefix + header_len > size {
            return Err(format!(
                "not a readable .npy file: the header announces {header_len} bytes but the file holds only {size} (truncated?)"
            ));
        }
        if header_len > MAX_NPY_HEADER {
            return Err(format!(
                "not a readable .npy file: a header of {header_len} bytes; numpy writes a few hundred and reads at most {MAX_NPY_HEADER}"
            ));
        }
        f.seek(SeekFrom::Start(prefix)).map_err(io)?;
        let mut header = Vec::with_capacity(header_len as usize);
        (&mut *f)
            .take(header_len)
            .read_to_end(&mut header)
            .map_err(io)?;
        // brackets outside string literals must nest properly and at most MAX_NPY_NESTING deep
        let mut open: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        let mut escaped = false;
        for &b in &header {
            if let Some(q) = quote {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    _ if b == q => quote = None,
                    _ => {}
                }
                continue;
            }
            let closes = match b {
                b'\'' | b'"' => {
                    quote = Some(b);
                    continue;
                }
                b'(' | b'[' | b'{' => {
                    open.push(b);
                    if open.len() > MAX_NPY_NESTING {
                        return Err(format!(
                            "not a readable .npy file: the header nests brackets more than {MAX_NPY_NESTING} deep; expected a plain float32/float64 array's header"
                        ));
                    }
                    continue;
                }
                b')' => b'(',
                b']' => b'[',
                b'}' => b'{',
                _ => continue,
            };
            if open.pop() != Some(closes) {
                return Err(format!(
                    "not a readable .npy file: unbalanced `{}` in the header",
                    b as char
                ));
            }
        }
        if let Some(&b) = open.last() {
            return Err(format!(
                "not a readable .npy file: unclosed `{}` in the header",
                b as char
            ));
        }
        Ok(())
    })();
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    checked
}

/// `.npy`: a 2-D (or 1-D, read as n×1) float32/float64 array in C order.
fn read_npy(path: &Path) -> Result<Points, String> {
    let file = path.display();
    let mut f = File::open(path).map_err(|e| format!("{file}: cannot open: {e}"))?;
    let size = f
        .metadata()
        .map_err(|e| format!("{file}: cannot read: {e}"))?
        .len();
    check_npy_header(&mut f, size).map_err(|m| format!("{file}: {m}"))?;
    let npy = NpyFile::new(BufReader::new(f))
        .map_err(|e| format!("{file}: not a readable .npy file: {e}"))?;
    let shape = npy.shape().to_vec();
    let (n, d) = match shape[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => {
            return Err(format!(
                "{file}: the array has shape {shape:?}; expected 2-D (points × dimensions) or 1-D"
            ))
        }
    };
    if npy.order() == Order::Fortran {
        return Err(format!(
            "{file}: the array is stored in Fortran order; save it in C order (numpy.ascontiguousarray)"
        ));
    }
    let width = match npy.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && matches!(t.size_field(), 4 | 8) => {
            t.size_field()
        }
        DType::Plain(t) => {
            return Err(format!(
                "{file}: dtype `{t}` is not supported; use float32 or float64"
            ))
        }
        _ => {
            return Err(format!(
                "{file}: structured or nested dtype; use a plain float32 or float64 array"
            ))
        }
    };
    // the header's shape must fit the file before anything is allocated for it
    let elements = n.checked_mul(d).filter(|&e| e <= MAX_ELEMENTS as u64);
    let Some(elements) = elements else {
        return Err(format!(
            "{file}: shape {shape:?} holds more than {MAX_ELEMENTS} values (4 GiB at most)"
        ));
    };
    if elements.saturating_mul(width) > size {
        return Err(format!(
            "{file}: the header announces shape {shape:?} but the file holds only {size} bytes (truncated?)"
        ));
    }
    if n == 0 || d == 0 {
        return Err(format!("{file}: the array is empty (shape {shape:?})"));
    }
    let data: Vec<f32> = if width == 4 {
        npy.into_vec::<f32>()
    } else {
        npy.into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect())
    }
    .map_err(|e| format!("{file}: cannot read the data: {e}"))?;
    let (n, d) = (n as usize, d as usize);
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "{file}: element [{}, {}] (0-based) is not finite in 32-bit floating point (NaN, ±inf or beyond ±3.4e38)",
            i / d,
            i % d
        ));
    }
    Ok(Points::new(data, n, d))
}
