//! IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
//! two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian
//! u32, then the data in big-endian row-major order. Gzipped files (`.gz`, detected by their
//! magic bytes) are decompressed on the fly.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use rand_chacha::ChaCha8Rng;

use super::{take_random, DataError, DataInfo, Dataset, Split, MAX_CLASSES, MAX_ELEMENTS};

/// A decoded IDX array.
struct IdxArray {
    dims: Vec<usize>,
    values: Vec<f32>,
}

/// The file as a byte stream, decompressed when it starts with the gzip magic bytes.
fn open(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::file(path, None, format!("cannot read: {e}")))?;
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .map_err(|e| DataError::file(path, None, format!("cannot read: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(GzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads exactly `buf.len()` bytes, or says what is missing.
fn read_exact(r: &mut dyn Read, buf: &mut [u8], path: &Path, what: &str) -> Result<(), DataError> {
    r.read_exact(buf).map_err(|e| {
        let msg = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!("truncated: the file ends inside the {what}")
        } else {
            format!("cannot read the {what}: {e}")
        };
        DataError::file(path, None, msg)
    })
}

/// Decodes an IDX file; with `pixels`, unsigned-byte data is scaled to [0, 1].
fn parse(path: &Path, pixels: bool) -> Result<IdxArray, DataError> {
    let bad = |msg: String| DataError::file(path, None, msg);
    let mut r = open(path)?;
    let mut magic = [0u8; 4];
    read_exact(&mut r, &mut magic, path, "IDX header")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(
            "not an IDX file (it must start with two zero bytes)".into()
        ));
    }
    let (size, unsigned_byte) = match magic[2] {
        0x08 => (1, true),
        0x09 => (1, false),
        0x0B => (2, false),
        0x0C => (4, false),
        0x0D => (4, false),
        0x0E => (8, false),
        t => return Err(bad(format!("unknown IDX data type code 0x{t:02x}"))),
    };
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(bad("IDX header declares 0 dimensions".into()));
    }
    let mut raw_dims = vec![0u8; 4 * ndims];
    read_exact(&mut r, &mut raw_dims, path, "IDX header")?;
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    if let Some(i) = dims.iter().skip(1).position(|&d| d == 0) {
        return Err(bad(format!("dimension {} of {dims:?} is 0", i + 2)));
    }
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&c| c <= MAX_ELEMENTS)
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} exceed the limit of {MAX_ELEMENTS} values"
            ))
        })?;
    // read what the file holds rather than allocating what the header declares: a header of
    // a few bytes may declare up to 8 GiB (found by `cargo fuzz run idx`)
    let want = count
        .checked_mul(size)
        .ok_or_else(|| bad(format!("dimensions {dims:?} are too large")))?;
    let mut body = Vec::new();
    r.by_ref()
        .take(want as u64)
        .read_to_end(&mut body)
        .map_err(|e| bad(format!("cannot read the data: {e}")))?;
    if body.len() < want {
        return Err(bad(format!(
            "truncated: the file ends inside the data (the header declares dimensions {dims:?}: {want} bytes of data, the file holds {})",
            body.len()
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        != 0
    {
        return Err(bad(format!(
            "the file is longer than its header's dimensions {dims:?} declare"
        )));
    }
    // decode element by element straight to f32: no f64 copy of a file that may hold 2³⁰ values
    let decode: fn(&[u8]) -> f64 = match magic[2] {
        0x08 => |c| c[0] as f64,
        0x09 => |c| c[0] as i8 as f64,
        0x0B => |c| i16::from_be_bytes([c[0], c[1]]) as f64,
        0x0C => |c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        0x0D => |c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        _ => |c| f64::from_be_bytes(c.try_into().expect("8 bytes")),
    };
    let scale = if pixels && unsigned_byte {
        1.0 / 255.0
    } else {
        1.0
    };
    let mut out = Vec::with_capacity(count);
    for (i, chunk) in body.chunks_exact(size).enumerate() {
        let v = decode(chunk);
        let f = (v * scale) as f32;
        if !f.is_finite() {
            return Err(bad(format!(
                "element {i} ({v}) is not finite in 32-bit floating point"
            )));
        }
        out.push(f);
    }
    Ok(IdxArray { dims, values: out })
}

/// Reads one images/labels pair into features (flattened) and integer labels.
fn read_pair(images: &Path, labels: &Path) -> Result<(Vec<f32>, usize, Vec<i64>), DataError> {
    let img = parse(images, true)?;
    let lab = parse(labels, false)?;
    if lab.dims.len() != 1 {
        return Err(DataError::file(
            labels,
            None,
            format!(
                "labels must be a 1-D IDX array, found dimensions {:?}",
                lab.dims
            ),
        ));
    }
    let n = img.dims[0];
    if lab.dims[0] != n {
        return Err(DataError::file(
            labels,
            None,
            format!(
                "holds {} labels but {} holds {n} images",
                lab.dims[0],
                images.display()
            ),
        ));
    }
    // a 1-D images file holds one value per example
    let dim: usize = img.dims[1..].iter().product::<usize>().max(1);
    let x = img.values;
    let mut y = Vec::with_capacity(n);
    for (i, &v) in lab.values.iter().enumerate() {
        if v.fract() != 0.0 || v < 0.0 {
            return Err(DataError::file(
                labels,
                None,
                format!("label {i} is {v}; labels must be non-negative integers"),
            ));
        }
        y.push(v.round() as i64);
    }
    Ok((x, dim, y))
}

pub(super) fn load(
    [train_images, train_labels, test_images, test_labels]: [&PathBuf; 4],
    n_train: Option<usize>,
    n_test: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<Split, DataError> {
    let (xtr, dtr, ytr) = read_pair(train_images, train_labels)?;
    let (xte, dte, yte) = read_pair(test_images, test_labels)?;
    if dtr != dte {
        return Err(DataError::file(
            test_images,
            None,
            format!("images have {dte} pixels but training images have {dtr}"),
        ));
    }
    let max_label = ytr.iter().chain(&yte).copied().max().unwrap_or(0);
    if max_label as usize >= MAX_CLASSES {
        return Err(DataError::file(
            train_labels,
            None,
            format!(
                "largest label is {max_label}; labels must be class indices below {MAX_CLASSES}"
            ),
        ));
    }
    if max_label < 1 {
        return Err(DataError::file(
            train_labels,
            None,
            "every label is 0: need at least 2 classes (labels are class indices 0, 1, …)",
        ));
    }
    let classes = max_label as usize + 1;
    let to_ds =
        |x, y: Vec<i64>| Dataset::new(x, y.into_iter().map(|v| v as usize).collect(), dtr, classes);
    let train = take_random(to_ds(xtr, ytr), n_train, "n_train", rng)?;
    let test = take_random(to_ds(xte, yte), n_test, "n_test", rng)?;
    if train.is_empty() {
        return Err(DataError::file(train_images, None, "holds no images"));
    }
    if test.is_empty() {
        return Err(DataError::file(test_images, None, "holds no images"));
    }
    Ok(Split {
        train,
        test,
        info: DataInfo {
            description: format!("IDX {}, d={dtr}, {classes} classes", train_images.display()),
            class_values: Some((0..classes as i64).collect()),
            files: vec![
                train_images.clone(),
                train_labels.clone(),
                test_images.clone(),
                test_labels.clone(),
            ],
            ..DataInfo::default()
        },
    })
}
