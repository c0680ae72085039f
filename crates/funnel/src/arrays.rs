//! Arrays from numpy files, for everything funnel reads that another framework wrote: `.npy`
//! (one array) and `.npz` (a zip of `.npy` members, stored or deflated, as `numpy.savez` and
//! `python/funnel_export.py` write them). Numbers of any plain dtype are read: float16 and
//! float32 as f32, float64 exactly, integers and booleans stay integers ([`Data::Int`]) until a caller
//! asks for floats; fixed-width unicode strings (`<U…`) are read as text. Every problem is bad
//! input naming the file and the member; nothing here panics on what a file contains, and no
//! allocation is sized by a header before the file has shown it holds that much.
//!
//! The zip container is read with the `zip` crate, each member with `npyz` (after the header
//! checks below, which guard against what fuzzing found in npyz 0.9).

use std::io::{Cursor, Read};
use std::path::Path;

use funnel_train::data::MAX_ELEMENTS;
use npyz::{DType, NpyFile, Order, TypeChar};

/// The values of an array, in C order.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// float16 (widened) and float32.
    Float(Vec<f32>),
    /// float64, kept exact.
    Double(Vec<f64>),
    /// Any integer width, signed or not, and booleans (0/1).
    Int(Vec<i64>),
    /// Fixed-width unicode strings.
    Text(Vec<String>),
}

/// One array: its shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<u64>,
    pub data: Data,
    /// The numpy dtype as written (`<f4`, `<i8`, `<U5`, …), for messages.
    pub dtype: String,
}

impl Array {
    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::Float(v) => v.len(),
            Data::Double(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::Text(v) => v.len(),
        }
    }

    /// Whether the array holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (integers converted exactly up to 2^24); `None` for text.
    pub fn floats(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::Float(v) => Some(v.clone()),
            Data::Double(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Data::Int(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Data::Text(_) => None,
        }
    }

    /// The values as f64 (f16/f32 widened, integers converted); `None` for text.
    pub fn doubles(&self) -> Option<Vec<f64>> {
        match &self.data {
            Data::Float(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
            Data::Double(v) => Some(v.clone()),
            Data::Int(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Data::Text(_) => None,
        }
    }

    /// Rows: the first dimension, 1 for a 0-d array.
    pub fn rows(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Values per row: the product of the trailing dimensions.
    pub fn row_len(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }
}

/// Longest `.npy` header read: numpy writes a few hundred bytes, and `numpy.load` refuses
/// more than 10 000 by default (`max_header_size`).
const MAX_NPY_HEADER: u64 = 10_000;
/// Deepest bracket nesting in a `.npy` header: a plain array's header nests 2 deep, a
/// structured dtype's (refused later with its own message) 4.
const MAX_NPY_NESTING: usize = 4;
/// Longest string element read (`<U…`), in code points.
const MAX_TEXT: u64 = 10_000;

/// Checks a `.npy` preamble and header text before npyz parses them. Both checks guard against
/// what `cargo fuzz run points` found in npyz 0.9:
/// * npyz allocates the header length the preamble announces before reading it, so a version
///   2 or 3 preamble (a 4-byte length) made a 15-byte file allocate up to 4 GiB;
/// * its header parser (py_literal, a backtracking PEG) takes time exponential in the number
///   of unclosed brackets, so a 200-byte header of unbalanced `{` hung `funnel estimate`;
///   headers whose brackets do not nest properly, or nest deeper than [`MAX_NPY_NESTING`], are
///   refused here.
///
/// Returns where the data starts (0 when unknown). Bytes without the magic or too short for a
/// preamble are left to npyz's own messages.
fn check_npy_header(bytes: &[u8]) -> Result<u64, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let size = bytes.len() as u64;
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Ok(0);
    }
    let (prefix, header_len) = match bytes[6] {
        1 => (10, u64::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        _ if bytes.len() >= 12 => (
            12,
            u64::from(u32::from_le_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11],
            ])),
        ),
        _ => return Ok(0),
    };
    if prefix + header_len > size {
        return Err(format!(
            "not a readable .npy array: the header announces {header_len} bytes but there are only {size} (truncated?)"
        ));
    }
    if header_len > MAX_NPY_HEADER {
        return Err(format!(
            "not a readable .npy array: a header of {header_len} bytes; numpy writes a few hundred and reads at most {MAX_NPY_HEADER}"
        ));
    }
    let header = &bytes[prefix as usize..(prefix + header_len) as usize];
    // brackets outside string literals must nest properly and at most MAX_NPY_NESTING deep
    let mut open: Vec<u8> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for &b in header {
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
                        "not a readable .npy array: the header nests brackets more than {MAX_NPY_NESTING} deep; expected a plain array's header"
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
                "not a readable .npy array: unbalanced `{}` in the header",
                b as char
            ));
        }
    }
    if let Some(&b) = open.last() {
        return Err(format!(
            "not a readable .npy array: unclosed `{}` in the header",
            b as char
        ));
    }
    Ok(prefix + header_len)
}

/// Parses the bytes of one `.npy` array (a file, or a member of an `.npz`).
pub fn parse_npy(bytes: &[u8]) -> Result<Array, String> {
    let offset = check_npy_header(bytes)?;
    // the bytes after the header
    let size = (bytes.len() as u64).saturating_sub(offset);
    let npy =
        NpyFile::new(Cursor::new(bytes)).map_err(|e| format!("not a readable .npy array: {e}"))?;
    let shape = npy.shape().to_vec();
    if npy.order() == Order::Fortran {
        return Err(
            "the array is stored in Fortran order; save it in C order (numpy.ascontiguousarray)"
                .into(),
        );
    }
    let DType::Plain(t) = npy.dtype() else {
        return Err("structured or nested dtype; use a plain numeric array".into());
    };
    let dtype = t.to_string();
    let width = t.size_field();
    let elem_bytes = match t.type_char() {
        TypeChar::UnicodeStr => {
            if width > MAX_TEXT {
                return Err(format!("dtype `{dtype}`: strings longer than {MAX_TEXT}"));
            }
            width * 4
        }
        _ => width,
    };
    // the header's shape must fit the bytes before anything is allocated for it
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&e| e <= MAX_ELEMENTS as u64);
    let Some(elements) = elements else {
        return Err(format!(
            "shape {shape:?} holds more than {MAX_ELEMENTS} values (4 GiB at most)"
        ));
    };
    if elements.saturating_mul(elem_bytes) > size {
        return Err(format!(
            "the header announces shape {shape:?} of `{dtype}` but there are only {size} bytes (truncated?)"
        ));
    }
    let read = |e: std::io::Error| format!("cannot read the data: {e}");
    let data = match (t.type_char(), width) {
        (TypeChar::Float, 2) => Data::Float(
            npy.into_vec::<half::f16>()
                .map_err(read)?
                .into_iter()
                .map(f32::from)
                .collect(),
        ),
        (TypeChar::Float, 4) => Data::Float(npy.into_vec::<f32>().map_err(read)?),
        (TypeChar::Float, 8) => Data::Double(npy.into_vec::<f64>().map_err(read)?),
        (TypeChar::Int, 1) => Data::Int(ints(npy.into_vec::<i8>().map_err(read)?)),
        (TypeChar::Int, 2) => Data::Int(ints(npy.into_vec::<i16>().map_err(read)?)),
        (TypeChar::Int, 4) => Data::Int(ints(npy.into_vec::<i32>().map_err(read)?)),
        (TypeChar::Int, 8) => Data::Int(npy.into_vec::<i64>().map_err(read)?),
        (TypeChar::Uint, 1) => Data::Int(ints(npy.into_vec::<u8>().map_err(read)?)),
        (TypeChar::Uint, 2) => Data::Int(ints(npy.into_vec::<u16>().map_err(read)?)),
        (TypeChar::Uint, 4) => Data::Int(ints(npy.into_vec::<u32>().map_err(read)?)),
        (TypeChar::Uint, 8) => {
            let v = npy.into_vec::<u64>().map_err(read)?;
            if v.iter().any(|&x| x > i64::MAX as u64) {
                return Err("a uint64 value beyond 2^63".into());
            }
            Data::Int(v.into_iter().map(|x| x as i64).collect())
        }
        (TypeChar::Bool, 1) => Data::Int(
            npy.into_vec::<bool>()
                .map_err(read)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::UnicodeStr, _) => Data::Text(npy.into_vec::<String>().map_err(read)?),
        _ => {
            return Err(format!(
                "dtype `{dtype}` is not supported; use float16/32/64, an integer type, bool or unicode strings"
            ))
        }
    };
    Ok(Array { shape, data, dtype })
}

fn ints<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
    v.into_iter().map(Into::into).collect()
}

/// The bytes of a `.npy` array as numpy writes them (format 1.0, header padded with spaces to
/// a multiple of 64 bytes): numpy type `descr` (`<f4`, `<i8`, `<U5`, …), C-order `shape` (empty
/// for a 0-d array) and the raw little-endian `data`.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Array, String> {
    let file = path.display();
    let bytes = read_capped(path)?;
    parse_npy(&bytes).map_err(|m| format!("{file}: {m}"))
}

/// Largest file or `.npz` member read: 16 GiB (the largest array of [`MAX_ELEMENTS`] f32
/// values is 4 GiB; float64 and a header double it).
const MAX_BYTES: u64 = 1 << 34;

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = path.display();
    let f = std::fs::File::open(path).map_err(|e| format!("{file}: cannot open: {e}"))?;
    let size = f
        .metadata()
        .map_err(|e| format!("{file}: cannot read: {e}"))?
        .len();
    if size > MAX_BYTES {
        return Err(format!(
            "{file}: {size} bytes; at most {MAX_BYTES} are read"
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{file}: cannot read: {e}"))?;
    Ok(bytes)
}

/// Whether the bytes start like a zip archive (an `.npz`).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Every member of an `.npz` file in archive order, by name without `.npy`
/// (`train/conv1`, `train_labels`). Members whose name does not end in `.npy` are refused.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Array)>, String> {
    let file = path.display();
    let bytes = read_capped(path)?;
    parse_npz(&bytes).map_err(|m| format!("{file}: {m}"))
}

/// [`read_npz`] on the bytes of an archive (the fuzz target enters here).
pub fn parse_npz(bytes: &[u8]) -> Result<Vec<(String, Array)>, String> {
    if !is_zip(bytes) {
        return Err(
            "not an .npz file (a zip archive of .npy arrays, as numpy.savez writes)".into(),
        );
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a readable .npz (zip) archive: {e}"))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| format!("member {i}: cannot read: {e}"))?;
        let name = member.name().to_string();
        if member.is_dir() {
            continue;
        }
        let Some(array_name) = name.strip_suffix(".npy") else {
            return Err(format!(
                "member `{name}` is not an .npy array (an .npz holds only `<name>.npy` members)"
            ));
        };
        let size = member.size();
        // the uncompressed size comes from the archive's directory: trust it only as a cap
        if size > MAX_BYTES || size > (bytes.len() as u64).saturating_mul(1032) {
            return Err(format!(
                "member `{name}`: announces {size} bytes uncompressed, more than its archive can hold"
            ));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut member)
            .take(size + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("member `{name}`: cannot read: {e}"))?;
        if data.len() as u64 != size {
            return Err(format!(
                "member `{name}`: {} bytes where the archive announces {size}",
                data.len()
            ));
        }
        let array = parse_npy(&data).map_err(|m| format!("array `{array_name}`: {m}"))?;
        out.push((array_name.to_string(), array));
    }
    if out.is_empty() {
        return Err("the archive holds no array".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        npy_bytes(descr, shape, data)
    }

    fn npz(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let method = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        for (name, bytes) in members {
            w.start_file(
                *name,
                zip::write::FileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn every_plain_dtype_reads_and_converts() {
        let f16: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f2", &[2], &f16)).unwrap();
        assert_eq!(a.data, Data::Float(vec![1.5, -2.0]));
        let f64s: Vec<u8> = [0.25f64, 3.0, 4.0, 5.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f8", &[2, 2], &f64s)).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!((a.rows(), a.row_len()), (2, 2));
        assert_eq!(a.floats().unwrap(), vec![0.25, 3.0, 4.0, 5.0]);
        let i64s: Vec<u8> = [0i64, 1, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy("<i8", &[3], &i64s)).unwrap().data,
            Data::Int(vec![0, 1, 9])
        );
        assert_eq!(
            parse_npy(&npy("|u1", &[3], &[0, 1, 255])).unwrap().data,
            Data::Int(vec![0, 1, 255])
        );
        assert_eq!(
            parse_npy(&npy("|b1", &[2], &[1, 0])).unwrap().data,
            Data::Int(vec![1, 0])
        );
        let text: Vec<u8> = "relu\0tanh\0"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        // `<U5`: two strings of 5 code points, NUL-padded
        assert_eq!(
            parse_npy(&npy("<U5", &[2], &text)).unwrap().data,
            Data::Text(vec!["relu".into(), "tanh".into()])
        );
    }

    #[test]
    fn bad_arrays_are_errors_not_panics() {
        let f32s: Vec<u8> = [1.0f32; 4].iter().flat_map(|x| x.to_le_bytes()).collect();
        // truncated data
        let e = parse_npy(&npy("<f4", &[10], &f32s)).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // an unsupported dtype
        let e = parse_npy(&npy("<c8", &[2], &f32s)).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        // unbalanced brackets in the header
        let mut b = npy("<f4", &[4], &f32s);
        b[12] = b'[';
        assert!(parse_npy(&b).is_err());
        // a huge announced header
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_npy(&b).unwrap_err().contains("header"));
        assert!(parse_npy(b"not numpy at all").is_err());
    }

    #[test]
    fn npz_members_come_in_archive_order_stored_or_deflated() {
        let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        for deflate in [false, true] {
            let bytes = npz(
                &[
                    ("train/b.npy", npy("<f4", &[2, 2], &f32s)),
                    ("train/a.npy", npy("<f4", &[4], &f32s)),
                    ("train_labels.npy", npy("|u1", &[2], &[0, 1])),
                ],
                deflate,
            );
            let arrays = parse_npz(&bytes).unwrap();
            let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["train/b", "train/a", "train_labels"]);
            assert_eq!(arrays[0].1.floats().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        }
        let bad = npz(&[("notes.txt", b"hello".to_vec())], false);
        assert!(parse_npz(&bad).unwrap_err().contains("notes.txt"));
        assert!(parse_npz(b"PK\x03\x04 truncated").is_err());
        assert!(parse_npz(b"plain text")
            .unwrap_err()
            .contains("not an .npz"));
    }
}
