//! Data sets: the paper's binary Gaussian mixture, a multi-class Gaussian, CSV files and IDX
//! (MNIST-format) files. Everything is seeded; standardization is fitted on the training split.

mod csv_file;
mod idx;
mod synthetic;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use csv_file::LabelColumn;

/// An in-memory labelled data set: `n` rows of `dim` features, labels in `0..num_classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Row-major `n × dim`.
    pub x: Vec<f32>,
    pub y: Vec<usize>,
    pub dim: usize,
    pub num_classes: usize,
}

impl Dataset {
    pub fn new(x: Vec<f32>, y: Vec<usize>, dim: usize, num_classes: usize) -> Self {
        assert_eq!(x.len(), y.len() * dim, "feature matrix and labels disagree");
        Self {
            x,
            y,
            dim,
            num_classes,
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Examples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.num_classes];
        for &y in &self.y {
            c[y] += 1;
        }
        c
    }

    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Dataset::new(
            x,
            idx.iter().map(|&i| self.y[i]).collect(),
            self.dim,
            self.num_classes,
        )
    }

    /// Features as a `[n, dim]` tensor on `device`.
    pub fn features(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.x.clone(), [self.len(), self.dim]),
            device,
        )
    }

    /// Features of rows `idx` as a `[idx.len(), dim]` tensor.
    pub fn features_of(&self, idx: &[usize], device: &Device) -> Tensor<2> {
        let mut x = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Tensor::from_data(TensorData::new(x, [idx.len(), self.dim]), device)
    }

    /// Labels of rows `idx` as an integer tensor.
    pub fn labels_of(&self, idx: &[usize], device: &Device) -> Tensor<1, Int> {
        let y: Vec<i64> = idx.iter().map(|&i| self.y[i] as i64).collect();
        Tensor::from_data(TensorData::new(y, [idx.len()]), device)
    }
}

/// A training and a test set over the same features and classes.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    pub info: DataInfo,
}

/// What was loaded or generated, for reports and closed forms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DataInfo {
    /// One line a person can read, e.g. `binary Gaussian mixture, d=16, ‖μ‖=1.5, s=1`.
    pub description: String,
    /// Class means of synthetic data (before standardization), one row per class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_means: Option<Vec<Vec<f64>>>,
    /// Per-coordinate noise standard deviation of synthetic data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_std: Option<f64>,
    /// For file data: the label value in the file that each class index stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_values: Option<Vec<i64>>,
    /// Files read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    pub standardized: bool,
}

/// Which data set to use. The `kind` key selects the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// Binary Gaussian mixture of the paper: Y uniform on {−1,+1} (classes 0, 1),
    /// X | Y ~ N(Y·μ, s²·I) with μ = ‖μ‖/√d·(1, …, 1).
    Gaussian {
        dim: usize,
        n_train: usize,
        n_test: usize,
        /// ‖μ‖
        mean_norm: f64,
        /// s
        #[serde(default = "one")]
        noise_std: f64,
        #[serde(default)]
        standardize: bool,
    },
    /// K Gaussian classes with uniform priors, X | Y=k ~ N(μ_k, s²·I), μ_k drawn uniformly on
    /// the sphere of radius `mean_norm` (seeded).
    GaussianMulticlass {
        classes: usize,
        dim: usize,
        n_train: usize,
        n_test: usize,
        mean_norm: f64,
        #[serde(default = "one")]
        noise_std: f64,
        #[serde(default)]
        standardize: bool,
    },
    /// A CSV file: one example per row, numeric features, an integer label column.
    Csv {
        path: PathBuf,
        /// A separate test file; without it the rows of `path` are split (seeded).
        #[serde(default)]
        test_path: Option<PathBuf>,
        /// Column name (needs a header) or 0-based index; default: a column named `label`,
        /// else the last column.
        #[serde(default)]
        label_column: Option<LabelColumn>,
        /// Whether the first row is a header; default: detected (a non-numeric cell).
        #[serde(default)]
        header: Option<bool>,
        #[serde(default)]
        n_train: Option<usize>,
        #[serde(default)]
        n_test: Option<usize>,
        /// Fraction of rows held out when there is no `test_path` and no `n_test` (default 0.25).
        #[serde(default)]
        test_fraction: Option<f64>,
        #[serde(default)]
        standardize: bool,
    },
    /// IDX files (the MNIST format, optionally gzipped). Unsigned-byte images are scaled to
    /// [0, 1]; images are flattened.
    Idx {
        train_images: PathBuf,
        train_labels: PathBuf,
        test_images: PathBuf,
        test_labels: PathBuf,
        #[serde(default)]
        n_train: Option<usize>,
        #[serde(default)]
        n_test: Option<usize>,
        #[serde(default)]
        standardize: bool,
    },
}

fn one() -> f64 {
    1.0
}

/// A problem with the data: a bad setting (naming the key) or a bad file (naming the file and,
/// where there is one, the line).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },
}

impl DataError {
    pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        DataError::Invalid {
            key,
            message: message.into(),
        }
    }

    pub(crate) fn file(path: &Path, line: Option<u64>, message: impl Into<String>) -> Self {
        DataError::File {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl DataSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            DataSpec::Gaussian { .. } => "gaussian",
            DataSpec::GaussianMulticlass { .. } => "gaussian_multiclass",
            DataSpec::Csv { .. } => "csv",
            DataSpec::Idx { .. } => "idx",
        }
    }

    fn standardize(&self) -> bool {
        match *self {
            DataSpec::Gaussian { standardize, .. }
            | DataSpec::GaussianMulticlass { standardize, .. }
            | DataSpec::Csv { standardize, .. }
            | DataSpec::Idx { standardize, .. } => standardize,
        }
    }

    /// Range checks that need no file access; errors name the key.
    pub fn validate(&self) -> Result<(), DataError> {
        let positive = |key: &'static str, v: usize| {
            if v == 0 {
                Err(DataError::invalid(key, "must be ≥ 1"))
            } else {
                Ok(())
            }
        };
        match *self {
            DataSpec::Gaussian {
                dim,
                n_train,
                n_test,
                mean_norm,
                noise_std,
                ..
            } => validate_gaussian(2, dim, n_train, n_test, mean_norm, noise_std)?,
            DataSpec::GaussianMulticlass {
                classes,
                dim,
                n_train,
                n_test,
                mean_norm,
                noise_std,
                ..
            } => {
                if classes < 2 {
                    return Err(DataError::invalid(
                        "classes",
                        format!("must be ≥ 2, got {classes}"),
                    ));
                }
                validate_gaussian(classes, dim, n_train, n_test, mean_norm, noise_std)?
            }
            DataSpec::Csv {
                n_train,
                n_test,
                test_fraction,
                ref test_path,
                ..
            } => {
                if let Some(n) = n_train {
                    positive("n_train", n)?;
                }
                if let Some(n) = n_test {
                    positive("n_test", n)?;
                }
                if let Some(f) = test_fraction {
                    if test_path.is_some() {
                        return Err(DataError::invalid(
                            "test_fraction",
                            "cannot be combined with test_path (the test file is the test set)",
                        ));
                    }
                    if !(f.is_finite() && f > 0.0 && f < 1.0) {
                        return Err(DataError::invalid(
                            "test_fraction",
                            format!("must be in (0, 1), got {f}"),
                        ));
                    }
                    if n_test.is_some() {
                        return Err(DataError::invalid(
                            "test_fraction",
                            "give either n_test or test_fraction, not both",
                        ));
                    }
                }
            }
            DataSpec::Idx {
                n_train, n_test, ..
            } => {
                if let Some(n) = n_train {
                    positive("n_train", n)?;
                }
                if let Some(n) = n_test {
                    positive("n_test", n)?;
                }
            }
        }
        Ok(())
    }

    /// Makes relative file paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            DataSpec::Csv {
                path, test_path, ..
            } => {
                fix(path);
                if let Some(t) = test_path {
                    fix(t);
                }
            }
            DataSpec::Idx {
                train_images,
                train_labels,
                test_images,
                test_labels,
                ..
            } => {
                for p in [train_images, train_labels, test_images, test_labels] {
                    fix(p);
                }
            }
            _ => {}
        }
    }

    /// Generates or loads the data. `seed` drives generation, subsampling and splitting.
    pub fn load(&self, seed: u64) -> Result<Split, DataError> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut split = match self {
            DataSpec::Gaussian {
                dim,
                n_train,
                n_test,
                mean_norm,
                noise_std,
                ..
            } => synthetic::binary_gaussian(
                *dim, *n_train, *n_test, *mean_norm, *noise_std, &mut rng,
            ),
            DataSpec::GaussianMulticlass {
                classes,
                dim,
                n_train,
                n_test,
                mean_norm,
                noise_std,
                ..
            } => synthetic::multiclass_gaussian(
                *classes, *dim, *n_train, *n_test, *mean_norm, *noise_std, &mut rng,
            ),
            DataSpec::Csv {
                path,
                test_path,
                label_column,
                header,
                n_train,
                n_test,
                test_fraction,
                ..
            } => csv_file::load(
                &csv_file::CsvOptions {
                    path,
                    test_path: test_path.as_deref(),
                    label_column: label_column.as_ref(),
                    header: *header,
                    n_train: *n_train,
                    n_test: *n_test,
                    test_fraction: *test_fraction,
                },
                &mut rng,
            )?,
            DataSpec::Idx {
                train_images,
                train_labels,
                test_images,
                test_labels,
                n_train,
                n_test,
                ..
            } => idx::load(
                [train_images, train_labels, test_images, test_labels],
                *n_train,
                *n_test,
                &mut rng,
            )?,
        };
        if split.train.len() < 2 || split.test.is_empty() {
            return Err(DataError::invalid(
                "n_train",
                format!(
                    "the split has {} training and {} test examples; funnel needs at least 2 and 1",
                    split.train.len(),
                    split.test.len()
                ),
            ));
        }
        if self.standardize() {
            standardize(&mut split);
        }
        Ok(split)
    }
}

/// Largest feature matrix funnel generates or loads (train + test elements): 2³⁰ f32 = 4 GiB.
pub const MAX_ELEMENTS: usize = 1 << 30;
/// Largest number of classes.
pub const MAX_CLASSES: usize = 1 << 16;
/// Largest |value| of a synthetic mean norm or noise level.
const MAX_SCALE: f64 = 1e6;

/// Range checks shared by the synthetic Gaussian kinds.
fn validate_gaussian(
    classes: usize,
    dim: usize,
    n_train: usize,
    n_test: usize,
    mean_norm: f64,
    noise_std: f64,
) -> Result<(), DataError> {
    if dim == 0 {
        return Err(DataError::invalid("dim", "must be ≥ 1"));
    }
    if classes > MAX_CLASSES {
        return Err(DataError::invalid(
            "classes",
            format!("at most {MAX_CLASSES}, got {classes}"),
        ));
    }
    let elements = n_train.checked_add(n_test).and_then(|n| n.checked_mul(dim));
    if elements.is_none_or(|e| e > MAX_ELEMENTS) {
        return Err(DataError::invalid(
            "n_train",
            format!(
                "(n_train + n_test)·dim = ({n_train} + {n_test})·{dim} exceeds the limit of {MAX_ELEMENTS} values (4 GiB)"
            ),
        ));
    }
    if n_train < classes {
        return Err(DataError::invalid(
            "n_train",
            format!("must be ≥ the number of classes ({classes}), got {n_train}"),
        ));
    }
    if n_test < 2 {
        return Err(DataError::invalid(
            "n_test",
            format!("must be ≥ 2, got {n_test}"),
        ));
    }
    if !(0.0..=MAX_SCALE).contains(&mean_norm) {
        return Err(DataError::invalid(
            "mean_norm",
            format!("must be in [0, {MAX_SCALE:e}], got {mean_norm}"),
        ));
    }
    if !(noise_std > 0.0 && noise_std <= MAX_SCALE) {
        return Err(DataError::invalid(
            "noise_std",
            format!("must be in (0, {MAX_SCALE:e}], got {noise_std}"),
        ));
    }
    Ok(())
}

/// Keeps `n` rows chosen at random (without replacement), or all of them when `n` is `None`.
pub(crate) fn take_random(
    data: Dataset,
    n: Option<usize>,
    key: &'static str,
    rng: &mut ChaCha8Rng,
) -> Result<Dataset, DataError> {
    match n {
        None => Ok(data),
        Some(n) if n > data.len() => Err(DataError::invalid(
            key,
            format!(
                "asks for {n} examples but only {} are available",
                data.len()
            ),
        )),
        Some(n) => {
            let mut idx: Vec<usize> = (0..data.len()).collect();
            idx.shuffle(rng);
            idx.truncate(n);
            idx.sort_unstable();
            Ok(data.subset(&idx))
        }
    }
}

/// Centers and scales every feature with the training split's mean and standard deviation
/// (constant features are only centered).
fn standardize(split: &mut Split) {
    let d = split.train.dim;
    let n = split.train.len() as f64;
    let mut mean = vec![0.0f64; d];
    for i in 0..split.train.len() {
        for (m, v) in mean.iter_mut().zip(split.train.row(i)) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; d];
    for i in 0..split.train.len() {
        for ((s, v), m) in var.iter_mut().zip(split.train.row(i)).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 1e-12 {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    for ds in [&mut split.train, &mut split.test] {
        for row in ds.x.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
                *v = ((*v as f64 - m) * s) as f32;
            }
        }
    }
    split.info.standardized = true;
}
