//! IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
//! two zero bytes, a type code, the number of dimensions, then each dimension as a big-endian
//! u32, then the data in big-endian row-major order. Gzipped files (`.gz`, detected by their
//! magic bytes) are decompressed on the fly.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use rand_chacha::ChaCha8Rng;

use super::{take_random, DataError, DataInfo, Dataset, Split};

/// A decoded IDX array.
struct IdxArray {
    dims: Vec<usize>,
    values: Vec<f64>,
    unsigned_byte: bool,
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path)
        .map_err(|e| DataError::file(path, None, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::file(path, None, format!("cannot decompress gzip data: {e}"))
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn parse(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = read_bytes(path)?;
    let bad = |msg: String| DataError::file(path, None, msg);
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            "not an IDX file (it must start with two zero bytes)".into()
        ));
    }
    let (size, unsigned_byte) = match bytes[2] {
        0x08 => (1, true),
        0x09 => (1, false),
        0x0B => (2, false),
        0x0C => (4, false),
        0x0D => (4, false),
        0x0E => (8, false),
        t => return Err(bad(format!("unknown IDX data type code 0x{t:02x}"))),
    };
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(bad("IDX header declares 0 dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("IDX dimensions overflow".into()))?;
    let expected = count
        .checked_mul(size)
        .and_then(|b| b.checked_add(header))
        .ok_or_else(|| bad("IDX dimensions overflow".into()))?;
    if bytes.len() != expected {
        return Err(bad(format!(
            "IDX header declares dimensions {dims:?} ({expected} bytes) but the file has {} bytes",
            bytes.len()
        )));
    }
    let body = &bytes[header..];
    let values: Vec<f64> = match bytes[2] {
        0x08 => body.iter().map(|&b| b as f64).collect(),
        0x09 => body.iter().map(|&b| b as i8 as f64).collect(),
        0x0B => body
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as f64)
            .collect(),
        0x0C => body
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        0x0D => body
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        _ => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!("element {i} is not finite")));
    }
    Ok(IdxArray {
        dims,
        values,
        unsigned_byte,
    })
}

/// Reads one images/labels pair into features (flattened) and integer labels.
fn read_pair(images: &Path, labels: &Path) -> Result<(Vec<f32>, usize, Vec<i64>), DataError> {
    let img = parse(images)?;
    let lab = parse(labels)?;
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
    let dim: usize = img.dims[1..].iter().product::<usize>().max(1);
    let scale = if img.unsigned_byte { 1.0 / 255.0 } else { 1.0 };
    let x = img.values.iter().map(|v| (v * scale) as f32).collect();
    let mut y = Vec::with_capacity(n);
    for (i, v) in lab.values.iter().enumerate() {
        if v.fract() != 0.0 || *v < 0.0 {
            return Err(DataError::file(
                labels,
                None,
                format!("label {i} is {v}; labels must be non-negative integers"),
            ));
        }
        y.push(*v as i64);
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
    if max_label >= 65_536 {
        return Err(DataError::file(
            train_labels,
            None,
            format!("largest label is {max_label}; labels must be class indices below 65536"),
        ));
    }
    let classes = (max_label as usize + 1).max(2);
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
