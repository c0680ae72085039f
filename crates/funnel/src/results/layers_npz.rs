//! The layers file: every layer's train and test activations of a network, in one `.npz`, as
//! `python/funnel_export.py` writes it for any PyTorch model and `funnel run --export-layers`
//! writes it for funnel's own MLP; `funnel layers` reads it. Members, in archive order:
//!
//! * `train/<layer>`, `test/<layer>` — `(n, …)` activations, one example per leading index
//!   (flattened per example), any float or integer dtype; the order of the `train/` members is
//!   the layer order;
//! * `train_labels`, `test_labels` — class indices 0..K−1, one per example;
//! * optional `train_loss`/`test_loss` (per-example cross-entropy) and
//!   `train_error`/`test_error` (per-example 0-1 loss), of any length: the measured gap is the
//!   difference of their means;
//! * optional per layer: `lipschitz/<layer>` (the loss's Lipschitz constant in that layer, for
//!   the W1 bound), `lipschitz_local/<layer>`, the certified constants `lipschitz_cp/<layer>`,
//!   `lipschitz_box/<layer>`, `lipschitz_cert/<layer>` (funnel's own export; NaN columns
//!   without them), `activation/<layer>`, `role/<layer>`,
//!   `regularizer/<layer>` (text), `masked/<layer>` (0/1: Dropout/DropConnect masks active);
//! * optional `config` — the TOML of the run that wrote the file (funnel's own export).
//!
//! Every inconsistency is bad input naming the file, the array and the layer.

use std::path::Path;

use funnel_metrics::Points;

use crate::arrays::{npy_bytes as npy, read_npz, Array, Data};

/// One layer of the file.
#[derive(Clone, Debug)]
pub struct FileLayer {
    pub name: String,
    pub train: Points,
    pub test: Points,
    pub lipschitz: Option<f64>,
    pub lipschitz_local: Option<f64>,
    /// Combettes–Pesquet, box and tightest certified constants (funnel's own export only).
    pub lipschitz_cp: Option<f64>,
    pub lipschitz_box: Option<f64>,
    pub lipschitz_cert: Option<f64>,
    pub activation: Option<String>,
    pub role: Option<String>,
    pub regularizer: Option<String>,
    pub masked: bool,
}

/// A layers file, checked.
#[derive(Clone, Debug)]
pub struct LayerFile {
    pub layers: Vec<FileLayer>,
    pub train_labels: Vec<usize>,
    pub test_labels: Vec<usize>,
    /// 1 + the largest label of either split.
    pub classes: usize,
    pub train_loss: Option<Vec<f64>>,
    pub test_loss: Option<Vec<f64>>,
    pub train_error: Option<Vec<f64>>,
    pub test_error: Option<Vec<f64>>,
    /// The TOML of the run that wrote the file, if it says.
    pub config: Option<String>,
}

/// Most classes a layers file may label (as for CSV data).
const MAX_CLASSES: i64 = 10_000;

/// Reads and checks a layers file; the error names the file, the array and the layer.
pub fn read(path: &Path) -> Result<LayerFile, String> {
    let file = path.display();
    let arrays = read_npz(path)?;
    parse(arrays).map_err(|m| format!("{file}: {m}"))
}

fn one_text(a: &Array, name: &str) -> Result<String, String> {
    match &a.data {
        Data::Text(v) if v.len() == 1 => Ok(v[0].clone()),
        _ => Err(format!(
            "array `{name}`: expected one string (numpy `<U…`), found `{}` of shape {:?}",
            a.dtype, a.shape
        )),
    }
}

fn one_number(a: &Array, name: &str) -> Result<f64, String> {
    match a.doubles() {
        Some(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(format!(
            "array `{name}`: expected one number, found `{}` of shape {:?}",
            a.dtype, a.shape
        )),
    }
}

fn vector(a: &Array, name: &str) -> Result<Vec<f64>, String> {
    if a.shape.len() != 1 {
        return Err(format!(
            "array `{name}`: expected a 1-D array, found shape {:?}",
            a.shape
        ));
    }
    let v = a
        .doubles()
        .ok_or_else(|| format!("array `{name}`: expected numbers, found `{}`", a.dtype))?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("array `{name}`: element {i} is not finite"));
    }
    Ok(v)
}

fn labels(a: &Array, name: &str) -> Result<Vec<usize>, String> {
    let Data::Int(v) = &a.data else {
        return Err(format!(
            "array `{name}`: class labels must be integers, found `{}`",
            a.dtype
        ));
    };
    if a.shape.len() != 1 {
        return Err(format!(
            "array `{name}`: expected a 1-D array of labels, found shape {:?}",
            a.shape
        ));
    }
    if let Some(i) = v.iter().position(|&y| !(0..MAX_CLASSES).contains(&y)) {
        return Err(format!(
            "array `{name}`: label {} at index {i}; labels are class indices 0..{}",
            v[i],
            MAX_CLASSES - 1
        ));
    }
    Ok(v.iter().map(|&y| y as usize).collect())
}

/// Activations of one split of one layer as an n × d cloud.
fn activations(a: &Array, name: &str) -> Result<Points, String> {
    if a.shape.is_empty() {
        return Err(format!(
            "array `{name}`: a single value; expected (examples, …)"
        ));
    }
    let (n, d) = (a.rows() as usize, a.row_len() as usize);
    if n == 0 || d == 0 {
        return Err(format!("array `{name}`: empty (shape {:?})", a.shape));
    }
    let data = a
        .floats()
        .ok_or_else(|| format!("array `{name}`: expected numbers, found `{}`", a.dtype))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "array `{name}`: example {}, value {} is not finite (NaN, ±inf or beyond the f32 range)",
            i / d,
            i % d
        ));
    }
    Ok(Points::new(data, n, d))
}

/// Checks the arrays of a layers file (in archive order) and assembles it.
pub fn parse(arrays: Vec<(String, Array)>) -> Result<LayerFile, String> {
    let find = |name: &str| arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a);
    let known = |n: &str| {
        [
            "train_labels",
            "test_labels",
            "train_loss",
            "test_loss",
            "train_error",
            "test_error",
            "config",
        ]
        .contains(&n)
            || [
                "train/",
                "test/",
                "lipschitz/",
                "lipschitz_local/",
                "lipschitz_cp/",
                "lipschitz_box/",
                "lipschitz_cert/",
                "activation/",
                "role/",
                "regularizer/",
                "masked/",
            ]
            .iter()
            .any(|p| n.starts_with(p))
    };
    if let Some((n, _)) = arrays.iter().find(|(n, _)| !known(n)) {
        return Err(format!(
            "array `{n}` is not part of a layers file (train/<layer>, test/<layer>, train_labels, test_labels, and the optional arrays of python/README.md)"
        ));
    }
    let names: Vec<&str> = arrays
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("train/"))
        .collect();
    if names.is_empty() {
        return Err("no `train/<layer>` array: a layers file holds at least one layer".into());
    }
    for (n, _) in &arrays {
        if let Some(layer) = n.strip_prefix("test/") {
            if !names.contains(&layer) {
                return Err(format!(
                    "array `{n}` has no `train/{layer}`: the train and test layer lists differ"
                ));
            }
        }
    }
    let train_labels = labels(
        find("train_labels").ok_or("no `train_labels` array")?,
        "train_labels",
    )?;
    let test_labels = labels(
        find("test_labels").ok_or("no `test_labels` array")?,
        "test_labels",
    )?;
    let classes = 1 + train_labels
        .iter()
        .chain(&test_labels)
        .copied()
        .max()
        .unwrap_or(0);
    let mut layers = Vec::with_capacity(names.len());
    for name in &names {
        let train_name = format!("train/{name}");
        let test_name = format!("test/{name}");
        let train = activations(find(&train_name).expect("listed"), &train_name)?;
        let test = activations(
            find(&test_name)
                .ok_or_else(|| format!("layer `{name}` has `{train_name}` but no `{test_name}`"))?,
            &test_name,
        )?;
        if train.d != test.d {
            return Err(format!(
                "layer `{name}`: {} values per example in `{train_name}` but {} in `{test_name}`",
                train.d, test.d
            ));
        }
        for (cloud, labels, array, labels_name) in [
            (&train, &train_labels, &train_name, "train_labels"),
            (&test, &test_labels, &test_name, "test_labels"),
        ] {
            if cloud.n != labels.len() {
                return Err(format!(
                    "layer `{name}`: `{array}` holds {} examples but `{labels_name}` {} labels",
                    cloud.n,
                    labels.len()
                ));
            }
        }
        let opt = |prefix: &str| {
            find(&format!("{prefix}/{name}")).map(|a| (a, format!("{prefix}/{name}")))
        };
        let number = |prefix: &str| -> Result<Option<f64>, String> {
            opt(prefix).map(|(a, n)| one_number(a, &n)).transpose()
        };
        let text = |prefix: &str| -> Result<Option<String>, String> {
            opt(prefix).map(|(a, n)| one_text(a, &n)).transpose()
        };
        let lipschitz = number("lipschitz")?;
        if let Some(l) = lipschitz.filter(|l| !(l.is_finite() && *l >= 0.0)) {
            return Err(format!(
                "array `lipschitz/{name}`: {l}; a Lipschitz constant is finite and ≥ 0"
            ));
        }
        layers.push(FileLayer {
            name: name.to_string(),
            train,
            test,
            lipschitz,
            lipschitz_local: number("lipschitz_local")?,
            lipschitz_cp: number("lipschitz_cp")?,
            lipschitz_box: number("lipschitz_box")?,
            lipschitz_cert: number("lipschitz_cert")?,
            activation: text("activation")?,
            role: text("role")?,
            regularizer: text("regularizer")?,
            masked: number("masked")?.is_some_and(|m| m != 0.0),
        });
    }
    for prefix in [
        "lipschitz",
        "lipschitz_local",
        "lipschitz_cp",
        "lipschitz_box",
        "lipschitz_cert",
        "activation",
        "role",
        "regularizer",
        "masked",
    ] {
        if let Some((n, _)) = arrays.iter().find(|(n, _)| {
            n.strip_prefix(&format!("{prefix}/"))
                .is_some_and(|l| !names.contains(&l))
        }) {
            return Err(format!("array `{n}` names no layer of the file"));
        }
    }
    let series = |name: &str| find(name).map(|a| vector(a, name)).transpose();
    let config = find("config").map(|a| one_text(a, "config")).transpose()?;
    Ok(LayerFile {
        layers,
        train_labels,
        test_labels,
        classes,
        train_loss: series("train_loss")?,
        test_loss: series("test_loss")?,
        train_error: series("train_error")?,
        test_error: series("test_error")?,
        config,
    })
}

fn text_npy(s: &str) -> Vec<u8> {
    let chars: Vec<char> = s.chars().collect();
    let data: Vec<u8> = chars
        .iter()
        .flat_map(|&c| (c as u32).to_le_bytes())
        .collect();
    npy(
        &format!("<U{}", chars.len().max(1)),
        &[],
        &if chars.is_empty() { vec![0; 4] } else { data },
    )
}

/// The bytes of a layers file for `file` (stored, not compressed: activations compress little
/// and the reader then needs no inflating).
pub fn write(file: &LayerFile) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut add = |name: String, bytes: Vec<u8>| {
        zip.start_file(format!("{name}.npy"), opts)
            .and_then(|()| zip.write_all(&bytes).map_err(Into::into))
            .expect("writing to memory");
    };
    let f32s = |p: &Points| -> Vec<u8> { p.data.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f64s = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let i64s =
        |v: &[usize]| -> Vec<u8> { v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect() };
    for l in &file.layers {
        add(
            format!("train/{}", l.name),
            npy("<f4", &[l.train.n, l.train.d], &f32s(&l.train)),
        );
    }
    for l in &file.layers {
        add(
            format!("test/{}", l.name),
            npy("<f4", &[l.test.n, l.test.d], &f32s(&l.test)),
        );
    }
    add(
        "train_labels".into(),
        npy("<i8", &[file.train_labels.len()], &i64s(&file.train_labels)),
    );
    add(
        "test_labels".into(),
        npy("<i8", &[file.test_labels.len()], &i64s(&file.test_labels)),
    );
    for (name, series) in [
        ("train_loss", &file.train_loss),
        ("test_loss", &file.test_loss),
        ("train_error", &file.train_error),
        ("test_error", &file.test_error),
    ] {
        if let Some(v) = series {
            add(name.into(), npy("<f8", &[v.len()], &f64s(v)));
        }
    }
    for l in &file.layers {
        for (prefix, value) in [
            ("lipschitz", l.lipschitz),
            ("lipschitz_local", l.lipschitz_local),
            ("lipschitz_cp", l.lipschitz_cp),
            ("lipschitz_box", l.lipschitz_box),
            ("lipschitz_cert", l.lipschitz_cert),
        ] {
            if let Some(v) = value {
                add(
                    format!("{prefix}/{}", l.name),
                    npy("<f8", &[], &v.to_le_bytes()),
                );
            }
        }
        for (prefix, value) in [
            ("activation", &l.activation),
            ("role", &l.role),
            ("regularizer", &l.regularizer),
        ] {
            if let Some(v) = value {
                add(format!("{prefix}/{}", l.name), text_npy(v));
            }
        }
        if l.masked {
            add(format!("masked/{}", l.name), npy("|b1", &[], &[1]));
        }
    }
    if let Some(c) = &file.config {
        add("config".into(), text_npy(c));
    }
    zip.finish().expect("writing to memory").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrays::parse_npz;

    fn layer(name: &str, d: usize) -> FileLayer {
        FileLayer {
            name: name.into(),
            train: Points::new((0..3 * d).map(|i| i as f32 * 0.5).collect(), 3, d),
            test: Points::new((0..2 * d).map(|i| -(i as f32)).collect(), 2, d),
            lipschitz: Some(1.5),
            lipschitz_local: None,
            lipschitz_cp: None,
            lipschitz_box: None,
            lipschitz_cert: None,
            activation: Some("relu".into()),
            role: Some("hidden".into()),
            regularizer: None,
            masked: true,
        }
    }

    fn file() -> LayerFile {
        LayerFile {
            layers: vec![layer("input", 4), layer("fc1", 2)],
            train_labels: vec![0, 1, 1],
            test_labels: vec![1, 0],
            classes: 2,
            train_loss: Some(vec![0.5, 0.25]),
            test_loss: Some(vec![1.0]),
            train_error: None,
            test_error: None,
            config: Some("name = \"x\"\nseed = 3\n".into()),
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let f = file();
        let back = parse(parse_npz(&write(&f)).unwrap()).unwrap();
        assert_eq!(back.layers.len(), 2);
        for (a, b) in f.layers.iter().zip(&back.layers) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.train.data, b.train.data);
            assert_eq!(a.test.data, b.test.data);
            assert_eq!((a.lipschitz, a.masked), (b.lipschitz, b.masked));
            assert_eq!(a.activation, b.activation);
            assert_eq!(a.role, b.role);
        }
        assert_eq!(back.train_labels, f.train_labels);
        assert_eq!(back.test_labels, f.test_labels);
        assert_eq!(back.classes, 2);
        assert_eq!(back.train_loss, f.train_loss);
        assert_eq!(back.config, f.config);
    }

    #[test]
    fn inconsistent_files_name_the_array_and_layer() {
        let arrays = |f: &LayerFile| parse_npz(&write(f)).unwrap();
        // a test layer without its train layer
        let mut a = arrays(&file());
        a.retain(|(n, _)| n != "train/fc1");
        let e = parse(a).unwrap_err();
        assert!(e.contains("test/fc1") && e.contains("differ"), "{e}");
        // different widths
        let mut f = file();
        f.layers[1].test = Points::new(vec![0.0; 6], 2, 3);
        let e = parse(arrays(&f)).unwrap_err();
        assert!(
            e.contains("layer `fc1`") && e.contains("2 values") && e.contains("3"),
            "{e}"
        );
        // labels of the wrong length
        let mut f = file();
        f.test_labels.push(0);
        let e = parse(arrays(&f)).unwrap_err();
        assert!(e.contains("test_labels") && e.contains("3 labels"), "{e}");
        // non-finite activations
        let mut f = file();
        f.layers[0].train.data[5] = f32::NAN;
        let e = parse(arrays(&f)).unwrap_err();
        assert!(e.contains("train/input") && e.contains("example 1"), "{e}");
        // a stray array
        let mut a = arrays(&file());
        let extra = a[0].1.clone();
        a.push(("weights".into(), extra));
        let e = parse(a).unwrap_err();
        assert!(e.contains("`weights`"), "{e}");
    }
}
