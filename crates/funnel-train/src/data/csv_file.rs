//! CSV data: one example per row, numeric feature columns and one integer label column.

use std::collections::BTreeSet;
use std::path::Path;

use funnel_core::apportion;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{take_random, DataError, DataInfo, Dataset, Split, MAX_CLASSES, MAX_ELEMENTS};

/// Which column holds the label: a header name, or a 0-based index (negative counts from the
/// end, −1 is the last column).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelColumn {
    Index(i64),
    Name(String),
}

pub(super) struct CsvOptions<'a> {
    pub path: &'a Path,
    pub test_path: Option<&'a Path>,
    pub label_column: Option<&'a LabelColumn>,
    pub header: Option<bool>,
    pub n_train: Option<usize>,
    pub n_test: Option<usize>,
    pub test_fraction: Option<f64>,
}

/// Rows of one file, before labels are mapped to classes.
struct RawTable {
    x: Vec<f32>,
    labels: Vec<i64>,
    dim: usize,
    layout: CsvLayout,
}

/// How a file's columns are laid out; the test file must repeat the training file's.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvLayout {
    /// Column names when the file has a header row.
    pub names: Option<Vec<String>>,
    pub ncols: usize,
    pub label_idx: usize,
}

/// Reads one CSV file. `expect` is the training file's layout when reading a test file, and
/// `classes` (sorted) the label values allowed, when they are known already.
fn read_table(
    path: &Path,
    label_column: Option<&LabelColumn>,
    header: Option<bool>,
    expect: Expect<'_>,
    classes: Option<&[i64]>,
) -> Result<RawTable, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| DataError::file(path, None, format!("cannot open: {}", io_message(&e))))?;
    let mut records = reader.records();
    let line_of = |r: &csv::StringRecord| r.position().map(|p| p.line());

    let first = match records.next() {
        None => return Err(DataError::file(path, None, "the file has no rows")),
        Some(r) => r.map_err(|e| csv_error(path, e))?,
    };
    let numeric = first.iter().filter(|c| c.parse::<f64>().is_ok()).count();
    let is_header = match (header, expect) {
        (Some(h), _) => h,
        (None, Expect::Layout(layout)) => layout.names.is_some(),
        (None, _) if numeric == first.len() => false,
        (None, _) if numeric == 0 => true,
        (None, _) => {
            return Err(DataError::file(
                path,
                line_of(&first),
                "the first row mixes numbers and text, so it is unclear whether it is a header: set data.header = true or false",
            ))
        }
    };
    let ncols = first.len();
    if ncols < 2 {
        return Err(DataError::file(
            path,
            line_of(&first),
            format!("found {ncols} column; need at least one feature and a label"),
        ));
    }
    let names: Option<Vec<String>> = is_header.then(|| first.iter().map(str::to_owned).collect());
    if let Expect::Columns(want) = expect {
        if ncols != want {
            return Err(DataError::file(
                path,
                line_of(&first),
                format!(
                    "found {ncols} columns; expected {want} ({} features and a label, as the model's input)",
                    want - 1
                ),
            ));
        }
    }
    let label_idx = match expect {
        Expect::Layout(layout) => {
            if layout.ncols != ncols || layout.names != names {
                let describe = |n: &Option<Vec<String>>, c: usize| match n {
                    Some(n) => format!("header `{}`", n.join(",")),
                    None => format!("{c} columns without a header"),
                };
                return Err(DataError::file(
                    path,
                    line_of(&first),
                    format!(
                        "has {} but the training file has {}; the test file must have the same columns",
                        describe(&names, ncols),
                        describe(&layout.names, layout.ncols)
                    ),
                ));
            }
            layout.label_idx
        }
        _ => resolve_label_column(path, label_column, names.as_deref(), ncols)?,
    };

    let mut x = Vec::new();
    let mut labels = Vec::new();
    let mut parse_row = |rec: &csv::StringRecord| -> Result<(), DataError> {
        let line = line_of(rec);
        if rec.len() != ncols {
            return Err(DataError::file(
                path,
                line,
                format!(
                    "expected {ncols} columns (as in the first row), found {}",
                    rec.len()
                ),
            ));
        }
        if x.len() + ncols > MAX_ELEMENTS {
            return Err(DataError::file(
                path,
                line,
                format!(
                    "more than {MAX_ELEMENTS} values; funnel keeps data in memory (4 GiB at most)"
                ),
            ));
        }
        for (j, cell) in rec.iter().enumerate() {
            let v: f64 = cell.parse().map_err(|_| {
                DataError::file(
                    path,
                    line,
                    format!("column {}: `{cell}` is not a number", j + 1),
                )
            })?;
            if j == label_idx {
                if !v.is_finite() || v.fract() != 0.0 || v.abs() > 1e15 {
                    return Err(DataError::file(
                        path,
                        line,
                        format!("label column {}: `{cell}` is not an integer", j + 1),
                    ));
                }
                let v = v as i64;
                if let Some(allowed) = classes {
                    if allowed.binary_search(&v).is_err() {
                        return Err(DataError::file(
                            path,
                            line,
                            format!(
                                "label `{cell}` is not one of the classes the model was trained on ({})",
                                list_values(allowed)
                            ),
                        ));
                    }
                }
                labels.push(v);
            } else {
                let f = v as f32;
                if !f.is_finite() {
                    return Err(DataError::file(
                        path,
                        line,
                        format!(
                            "column {}: `{cell}` is not finite in 32-bit floating point",
                            j + 1
                        ),
                    ));
                }
                x.push(f);
            }
        }
        Ok(())
    };
    if !is_header {
        parse_row(&first)?;
    }
    for rec in records {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        parse_row(&rec)?;
    }
    if labels.is_empty() {
        return Err(DataError::file(
            path,
            None,
            "the file has a header but no data rows",
        ));
    }
    Ok(RawTable {
        x,
        labels,
        dim: ncols - 1,
        layout: CsvLayout {
            names,
            ncols,
            label_idx,
        },
    })
}

/// What a file read by [`read_table`] must look like.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// Anything (the training file).
    Nothing,
    /// The training file's columns.
    Layout(&'a CsvLayout),
    /// This many columns (features and a label).
    Columns(usize),
}

/// `0, 1, 2` — at most 10 values, then `…`.
fn list_values(values: &[i64]) -> String {
    let mut s: Vec<String> = values.iter().take(10).map(|v| v.to_string()).collect();
    if values.len() > 10 {
        s.push("…".into());
    }
    s.join(", ")
}

/// Reads a labelled CSV file with the features and classes of `split` (shifted or production
/// data, measured against a model trained on `split`) and applies the split's standardization.
/// For CSV data the file must repeat the training file's columns and label column; for other
/// data `label_column` picks the label (default: the last column) and the other columns must be
/// the `dim` features. Labels must be among the split's classes.
pub(super) fn read_like(
    split: &Split,
    path: &Path,
    label_column: Option<&LabelColumn>,
) -> Result<Dataset, DataError> {
    let classes: Vec<i64> = match &split.info.class_values {
        Some(v) => v.clone(),
        None => (0..split.train.num_classes as i64).collect(),
    };
    let expect = match &split.info.csv_layout {
        Some(layout) => Expect::Layout(layout),
        None => Expect::Columns(split.train.dim + 1),
    };
    let raw = read_table(path, label_column, None, expect, Some(&classes))?;
    let y = raw
        .labels
        .iter()
        .map(|v| classes.binary_search(v).expect("labels were checked"))
        .collect();
    let mut data = Dataset::new(raw.x, y, raw.dim, classes.len());
    if let Some(st) = &split.info.standardization {
        st.apply(&mut data);
    }
    Ok(data)
}

fn resolve_label_column(
    path: &Path,
    label_column: Option<&LabelColumn>,
    names: Option<&[String]>,
    ncols: usize,
) -> Result<usize, DataError> {
    match label_column {
        None => Ok(names
            .and_then(|n| n.iter().position(|c| c == "label"))
            .unwrap_or(ncols - 1)),
        Some(LabelColumn::Index(i)) => {
            let idx = if *i < 0 { ncols as i64 + i } else { *i };
            if (0..ncols as i64).contains(&idx) {
                Ok(idx as usize)
            } else {
                Err(DataError::invalid(
                    "label_column",
                    format!("index {i} is outside the {ncols} columns of {}", path.display()),
                ))
            }
        }
        Some(LabelColumn::Name(name)) => match names {
            None => Err(DataError::invalid(
                "label_column",
                format!(
                    "`{name}` is a column name but {} has no header row (set header = true, or give an index)",
                    path.display()
                ),
            )),
            Some(n) => n.iter().position(|c| c == name).ok_or_else(|| {
                DataError::invalid(
                    "label_column",
                    format!("no column named `{name}` in {} (columns: {})", path.display(), n.join(", ")),
                )
            }),
        },
    }
}

/// Splits row indices into `n_test` held-out rows and the rest, class by class: each class gives
/// its share of `n_test` (largest-remainder rounding, so the total is exact), so a class is
/// missing from the test rows only if its share rounds to zero.
fn stratified_split(
    labels: &[usize],
    classes: usize,
    n_test: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_class = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y].push(i);
    }
    let sizes: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let take = apportion(&sizes, n_test);
    let (mut test, mut rest) = (Vec::with_capacity(n_test), Vec::new());
    for (c, mut idx) in by_class.into_iter().enumerate() {
        idx.shuffle(rng);
        test.extend_from_slice(&idx[..take[c]]);
        rest.extend_from_slice(&idx[take[c]..]);
    }
    (test, rest)
}

fn io_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line());
    DataError::file(path, line, io_message(&e))
}

pub(super) fn load(opts: &CsvOptions<'_>, rng: &mut ChaCha8Rng) -> Result<Split, DataError> {
    let train_raw = read_table(
        opts.path,
        opts.label_column,
        opts.header,
        Expect::Nothing,
        None,
    )?;
    let layout = train_raw.layout.clone();
    let test_raw = match opts.test_path {
        Some(p) => Some(read_table(
            p,
            opts.label_column,
            opts.header,
            Expect::Layout(&layout),
            None,
        )?),
        None => None,
    };
    // classes: the sorted union of label values in both files
    let values: Vec<i64> = train_raw
        .labels
        .iter()
        .chain(test_raw.iter().flat_map(|t| t.labels.iter()))
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if values.len() > MAX_CLASSES {
        return Err(DataError::file(
            opts.path,
            None,
            format!(
                "the label column holds {} distinct values; at most {MAX_CLASSES} classes",
                values.len()
            ),
        ));
    }
    if values.len() < 2 {
        return Err(DataError::file(
            opts.path,
            None,
            format!(
                "the label column holds a single value ({}); need at least 2 classes",
                values[0]
            ),
        ));
    }
    let to_dataset = |raw: RawTable| {
        let y = raw
            .labels
            .iter()
            .map(|v| values.binary_search(v).expect("value is in the union"))
            .collect();
        Dataset::new(raw.x, y, raw.dim, values.len())
    };
    let mut files = vec![opts.path.to_path_buf()];
    let (train, test) = match test_raw {
        Some(t) => {
            files.push(opts.test_path.expect("test file was read").to_path_buf());
            let train = take_random(to_dataset(train_raw), opts.n_train, "n_train", rng)?;
            let test = take_random(to_dataset(t), opts.n_test, "n_test", rng)?;
            (train, test)
        }
        None => {
            let all = to_dataset(train_raw);
            let n = all.len();
            let n_test = match opts.n_test {
                Some(k) => k,
                None => ((opts.test_fraction.unwrap_or(0.25) * n as f64).round() as usize).max(1),
            };
            if n_test >= n {
                let key = if opts.n_test.is_some() {
                    "n_test"
                } else {
                    "test_fraction"
                };
                return Err(DataError::invalid(
                    key,
                    format!(
                        "holds out {n_test} of the {n} rows of {}, leaving none to train on",
                        opts.path.display()
                    ),
                ));
            }
            let n_train = opts.n_train.unwrap_or(n - n_test);
            if n_train + n_test > n {
                return Err(DataError::invalid(
                    "n_train",
                    format!(
                        "n_train + n_test = {} exceeds the {n} rows of {}",
                        n_train + n_test,
                        opts.path.display()
                    ),
                ));
            }
            let (mut test_idx, mut rest) = stratified_split(&all.y, all.num_classes, n_test, rng);
            rest.shuffle(rng);
            rest.truncate(n_train);
            test_idx.sort_unstable();
            rest.sort_unstable();
            (all.subset(&rest), all.subset(&test_idx))
        }
    };
    let dim = train.dim;
    Ok(Split {
        train,
        test,
        info: DataInfo {
            description: format!(
                "CSV {}, d={dim}, {} classes",
                opts.path.display(),
                values.len()
            ),
            class_values: Some(values),
            files,
            csv_layout: Some(layout),
            ..DataInfo::default()
        },
    })
}
