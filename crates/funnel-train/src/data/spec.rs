//! `[data]` in a config: which data set, checked and loaded.

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::csv_file::{self, LabelColumn};
use super::{idx, standardize, synthetic, DataError, Dataset, Split, MAX_CLASSES, MAX_ELEMENTS};

/// Largest |value| of a synthetic mean norm or noise level.
const MAX_SCALE: f64 = 1e6;

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
        /// Fraction of labels, in both splits, replaced by a uniformly drawn *other* class
        /// (seeded, independent of the features): symmetric label noise, the same law for
        /// training and test data, so the gap stays a generalization gap. Default 0.
        #[serde(default)]
        label_noise: f64,
        /// Covariate shift of the *test* split: its class means move by `test_shift`·e_1 (the
        /// first coordinate), so each class's input KL between train and test distributions
        /// is exactly test_shift²/(2s²). 0 (the default) is the paper's setting; a shift gives
        /// the SDPI contraction a known, measurable D_0.
        #[serde(default)]
        test_shift: f64,
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
        /// Fraction of labels, in both splits, replaced by a uniformly drawn *other* class
        /// (seeded, independent of the features): symmetric label noise, the same law for
        /// training and test data, so the gap stays a generalization gap. Default 0.
        #[serde(default)]
        label_noise: f64,
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
        /// Fraction of labels, in both splits, replaced by a uniformly drawn *other* class
        /// (seeded, independent of the features): symmetric label noise, the same law for
        /// training and test data, so the gap stays a generalization gap. Default 0.
        #[serde(default)]
        label_noise: f64,
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
        /// Fraction of labels, in both splits, replaced by a uniformly drawn *other* class
        /// (seeded, independent of the features): symmetric label noise, the same law for
        /// training and test data, so the gap stays a generalization gap. Default 0.
        #[serde(default)]
        label_noise: f64,
    },
}

fn one() -> f64 {
    1.0
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

    /// The `label_noise` fraction of any kind.
    pub fn label_noise(&self) -> f64 {
        match *self {
            DataSpec::Gaussian { label_noise, .. }
            | DataSpec::GaussianMulticlass { label_noise, .. }
            | DataSpec::Csv { label_noise, .. }
            | DataSpec::Idx { label_noise, .. } => label_noise,
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
        let q = self.label_noise();
        if !(0.0..=1.0).contains(&q) {
            return Err(DataError::invalid(
                "label_noise",
                format!("must be a fraction in [0, 1], got {q}"),
            ));
        }
        match *self {
            DataSpec::Gaussian {
                dim,
                n_train,
                n_test,
                mean_norm,
                noise_std,
                test_shift,
                ..
            } => {
                validate_gaussian(2, dim, n_train, n_test, mean_norm, noise_std)?;
                if !(test_shift.is_finite() && test_shift.abs() <= 1e6) {
                    return Err(DataError::invalid(
                        "test_shift",
                        format!("must be finite, |shift| ≤ 1e6, got {test_shift}"),
                    ));
                }
            }
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
                test_shift,
                ..
            } => synthetic::binary_gaussian(
                *dim,
                *n_train,
                *n_test,
                *mean_norm,
                *noise_std,
                *test_shift,
                &mut rng,
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
        if self.label_noise() > 0.0 {
            // its own stream: the features (and every other draw) are those of the clean data
            let mut noise =
                ChaCha8Rng::seed_from_u64(funnel_core::derive_seed(seed, "label-noise"));
            let flipped = [&mut split.train, &mut split.test]
                .map(|ds| flip_labels(ds, self.label_noise(), &mut noise));
            split.info.description.push_str(&format!(
                "; label noise {}: {} of {} training and {} of {} test labels replaced by another class",
                self.label_noise(),
                flipped[0],
                split.train.len(),
                flipped[1],
                split.test.len()
            ));
        }
        if self.standardize() {
            standardize(&mut split);
        }
        Ok(split)
    }
}

/// Replaces each label, with probability `q`, by a class drawn uniformly from the *other*
/// classes; returns how many were replaced.
fn flip_labels(ds: &mut Dataset, q: f64, rng: &mut ChaCha8Rng) -> usize {
    let k = ds.num_classes;
    let mut flipped = 0;
    for y in &mut ds.y {
        if k > 1 && rng.random_bool(q) {
            let other = rng.random_range(0..k - 1);
            *y = if other >= *y { other + 1 } else { other };
            flipped += 1;
        }
    }
    flipped
}

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
