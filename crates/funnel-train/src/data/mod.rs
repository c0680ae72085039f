//! Data sets: the paper's binary Gaussian mixture, a multi-class Gaussian, CSV files and IDX
//! (MNIST-format) files. Everything is seeded; standardization is fitted on the training split.

mod csv_file;
mod idx;
mod spec;
mod synthetic;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use csv_file::{CsvLayout, LabelColumn};
pub use spec::DataSpec;

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

impl Split {
    /// Reads another labelled CSV file over this split's features and classes — shifted or
    /// production data to measure a trained model against — with the training split's
    /// standardization applied. For CSV data the file repeats the training file's columns;
    /// otherwise `label_column` names the label column (default: the last) and the remaining
    /// columns are the features, in order. Errors name the file and the line.
    pub fn read_labelled_csv(
        &self,
        path: &Path,
        label_column: Option<&LabelColumn>,
    ) -> Result<Dataset, DataError> {
        csv_file::read_like(self, path, label_column)
    }
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
    /// The standardization fitted on the training split, for further data of the same kind.
    #[serde(skip)]
    pub standardization: Option<Standardization>,
    /// For CSV data: the training file's columns, which further files must repeat.
    #[serde(skip)]
    pub csv_layout: Option<CsvLayout>,
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

/// Largest feature matrix funnel generates or loads (train + test elements): 2³⁰ f32 = 4 GiB.
pub const MAX_ELEMENTS: usize = 1 << 30;
/// Largest number of classes.
pub const MAX_CLASSES: usize = 1 << 16;

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

/// Per-feature centring and scaling fitted on a training split: x ↦ (x − mean)·scale, with
/// scale = 1/sd (1 for constant features, which are only centred).
#[derive(Clone, Debug, PartialEq)]
pub struct Standardization {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Standardization {
    /// Mean and standard deviation of every feature of `train`.
    pub fn fit(train: &Dataset) -> Self {
        let d = train.dim;
        let n = train.len() as f64;
        let mut mean = vec![0.0f64; d];
        for i in 0..train.len() {
            for (m, v) in mean.iter_mut().zip(train.row(i)) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; d];
        for i in 0..train.len() {
            for ((s, v), m) in var.iter_mut().zip(train.row(i)).zip(&mean) {
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
        Self { mean, scale }
    }

    /// Standardizes `ds` in place (its features must be the fitted ones).
    pub fn apply(&self, ds: &mut Dataset) {
        assert_eq!(ds.dim, self.mean.len(), "standardization of other features");
        for row in ds.x.chunks_mut(ds.dim.max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = ((*v as f64 - m) * s) as f32;
            }
        }
    }
}

/// Centers and scales every feature with the training split's mean and standard deviation
/// (constant features are only centered), and keeps the statistics in `info`.
pub(crate) fn standardize(split: &mut Split) {
    let st = Standardization::fit(&split.train);
    st.apply(&mut split.train);
    st.apply(&mut split.test);
    split.info.standardized = true;
    split.info.standardization = Some(st);
}
