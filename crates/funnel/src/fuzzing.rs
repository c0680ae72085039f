//! Bodies of the fuzz targets in `fuzz/` (cargo fuzz), here in the library so that the same code
//! replays the kept corpus in `cargo test` (`tests/fuzz_corpus.rs`) without libFuzzer.
//!
//! Each function takes arbitrary bytes, turns them into user input — a config file and
//! `--set` overrides, a labelled CSV file, a point file, IDX files, point clouds — and feeds it
//! through the code path the command line uses. None of them may panic, whatever the bytes:
//! bad input must come back as an error. The `Result` says whether the input was accepted, so
//! that tests can also check that valid seeds are.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use funnel_core::derive_seed;
use funnel_metrics::cloud::stratified_subsample;
use funnel_metrics::mi::{input_information, label_information};
use funnel_metrics::{
    layer_divergence, Cloud, Estimate, KlEstimator, LayerContext, MetricsSpec, NoisyLayer, Points,
    W1Estimator,
};
use funnel_train::data::LabelColumn;
use funnel_train::DataSpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::BackendName;
use crate::config::Config;
use crate::pipeline::prepare::{capture_subsets, points_needed};
use crate::points::read_points;

/// A fuzz target: the bytes of one input; an error is fine, a panic is a bug.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// The fuzz targets, by name: the folder names under `fuzz/corpus/` and `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("csv_data", csv_data),
    ("points", points),
    ("idx", idx),
    ("npz", npz),
    ("estimators", estimators),
];

/// A fresh folder under the system's temporary folder, removed on drop: the loaders read
/// paths, so the bytes are written to files first.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("funnel-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `data` split at every occurrence of `sep` (at most `max` parts; the last keeps the rest).
fn split_parts<'a>(data: &'a [u8], sep: &[u8], max: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < max {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + sep.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// The config file and its overrides: the bytes up to the first NUL are the file's text, and
/// each further NUL-separated part is one `--set key=value` argument. Runs what `funnel run`
/// does before loading data — read, override, deserialize, resolve paths, validate — and then
/// freezes the resolved config as a run folder does, which must load again to the same config.
pub fn config(data: &[u8]) -> Result<(), String> {
    let mut parts = data.split(|&b| b == 0);
    let text = parts.next().unwrap_or_default();
    // the command line reads the file with read_to_string and takes arguments as UTF-8
    let text = std::str::from_utf8(text).map_err(|e| format!("config is not UTF-8: {e}"))?;
    let overrides = parts
        .take(16)
        .map(|p| {
            std::str::from_utf8(p)
                .map(str::to_owned)
                .map_err(|e| format!("--set is not UTF-8: {e}"))
        })
        .collect::<Result<Vec<String>, String>>()?;
    let path = Path::new("fuzz.toml");
    let config = Config::from_text(text, path, &overrides).map_err(|e| e.to_string())?;
    // what a run does with a valid config that needs no data: the resolved copy it freezes into
    // the run folder, which `funnel measure` and reruns load again
    let frozen = config.to_toml()?;
    let again = Config::from_text(&frozen, path, &[]).unwrap_or_else(|e| {
        panic!("the resolved config does not load again: {e}\n--- resolved config:\n{frozen}")
    });
    assert!(
        again == config,
        "the resolved config loads as a different config:\n{frozen}\n{config:?}\n{again:?}"
    );
    let _ = points_needed(&config.metrics);
    let _ = config.model.mlp(1, 2).dims();
    Ok(())
}

/// A small config whose `[data]` section is replaced by each fuzzed data spec, for the checks
/// `funnel run` makes after loading the data ([`capture_subsets`]).
const DATA_CONFIG: &str = r#"
name = "fuzz"
[data]
kind = "gaussian"
dim = 2
n_train = 10
n_test = 10
mean_norm = 1.0
[model]
widths = [4]
[metrics]
k = 1
max_points = 64
"#;

/// The run's checks after the data is loaded: model size and enough captured points per
/// class. Returns their verdict (errors are fine).
fn after_load(data: DataSpec, split: &funnel_train::Split) -> Result<(), String> {
    let mut config =
        Config::parse(DATA_CONFIG, Path::new("fuzz.toml"), &[]).map_err(|e| e.to_string())?;
    config.data = data;
    let mlp = config.model.mlp(split.train.dim, split.train.num_classes);
    mlp.validate().map_err(|e| e.message)?;
    capture_subsets(
        &config,
        &split.train,
        &split.test,
        split.info.class_values.as_deref(),
        "fuzz.toml",
    )
    .map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// A labelled CSV training file for `[data] kind = "csv"`. The first byte picks the data
/// spec's options (header, label column, held-out share or a separate test file, row counts,
/// standardization); the rest is the file (or, with a separate test file, the training file, a
/// NUL byte, and the test file). Loads it as `funnel run` does, then reads the file again as
/// `funnel measure --test` would against the loaded split.
pub fn csv_data(data: &[u8]) -> Result<(), String> {
    let (&opts, body) = data.split_first().ok_or("empty input")?;
    let scratch = Scratch::new()?;
    let separate_test = opts & 0x80 != 0;
    let (train_bytes, test_bytes) = if separate_test {
        let parts = split_parts(body, b"\0", 2);
        (parts[0], parts.get(1).copied())
    } else {
        (body, None)
    };
    let path = scratch.write("train.csv", train_bytes)?;
    let test_path = match test_bytes {
        Some(b) => Some(scratch.write("test.csv", b)?),
        None => None,
    };
    let header = match opts & 3 {
        0 | 3 => None,
        1 => Some(true),
        _ => Some(false),
    };
    let label_column = match (opts >> 2) & 3 {
        0 => None,
        1 => Some(LabelColumn::Index(0)),
        2 => Some(LabelColumn::Index(-1)),
        _ => Some(LabelColumn::Name("label".into())),
    };
    let (n_train, n_test, test_fraction) = match (opts >> 4) & 3 {
        0 => (None, None, None),
        1 => (None, Some(2), None),
        2 => (Some(3), None, None),
        _ if separate_test => (None, None, None),
        _ => (None, None, Some(0.5)),
    };
    let spec = DataSpec::Csv {
        label_noise: 0.0,
        path: path.clone(),
        test_path,
        label_column: label_column.clone(),
        header,
        n_train,
        n_test,
        test_fraction,
        standardize: opts & 0x40 != 0,
    };
    let split = spec
        .load(u64::from(opts))
        .map_err(|e| format!("load: {e}"))?;
    let (n, dim) = (split.train.len(), split.train.dim);
    assert!(
        n >= 2 && !split.test.is_empty(),
        "load returned a split too small to run"
    );
    assert_eq!(split.test.dim, dim, "train and test features disagree");
    assert!(
        split
            .train
            .y
            .iter()
            .chain(&split.test.y)
            .all(|&y| y < split.train.num_classes),
        "a label outside the classes"
    );
    // the training file measured against the model trained on it: it repeats the columns
    let again = split
        .read_labelled_csv(&path, None)
        .map_err(|e| format!("read again: {e}"))?;
    assert_eq!(again.dim, dim, "the file read again has other features");
    after_load(spec, &split)
}

/// A point file of `funnel estimate --p/--q`: the first byte picks the extension (`.npy` when
/// odd, else `.csv`), the rest is the file.
pub fn points(data: &[u8]) -> Result<(), String> {
    let (&kind, body) = data.split_first().ok_or("empty input")?;
    let scratch = Scratch::new()?;
    let name = if kind & 1 == 1 { "p.npy" } else { "p.csv" };
    let path = scratch.write(name, body)?;
    let file = read_points(&path)?;
    let p = &file.points;
    assert!(p.n > 0 && p.d > 0, "an empty cloud was accepted");
    assert_eq!(p.data.len(), p.n * p.d);
    assert!(p.all_finite(), "a non-finite value was accepted");
    Ok(())
}

/// A layers file for `funnel layers` (an `.npz`: zip of `.npy` members): the bytes are the
/// archive. Whatever parses must be a consistent layers file: every layer with as many train
/// and test examples as labels, equal widths, finite values.
pub fn npz(data: &[u8]) -> Result<(), String> {
    let arrays = crate::arrays::parse_npz(data)?;
    let file = crate::results::layers_npz::parse(arrays)?;
    for l in &file.layers {
        assert_eq!(
            l.train.n,
            file.train_labels.len(),
            "train examples ≠ labels"
        );
        assert_eq!(l.test.n, file.test_labels.len(), "test examples ≠ labels");
        assert_eq!(l.train.d, l.test.d, "train and test widths differ");
        assert!(
            l.train.all_finite() && l.test.all_finite(),
            "a non-finite value was accepted"
        );
    }
    assert!(
        file.train_labels
            .iter()
            .chain(&file.test_labels)
            .all(|&y| y < file.classes),
        "a label beyond the class count"
    );
    Ok(())
}

/// IDX (MNIST-format) files for `[data] kind = "idx"`: the first byte picks row counts and
/// standardization; the rest is the train images, train labels, test images and test labels,
/// separated by the four bytes `IDX|` (missing test files repeat the training ones, a missing
/// labels file is empty). Gzipped parts are decompressed by the loader as usual.
pub fn idx(data: &[u8]) -> Result<(), String> {
    let (&opts, body) = data.split_first().ok_or("empty input")?;
    let parts = split_parts(body, b"IDX|", 4);
    let part = |i: usize| parts.get(i).copied();
    let scratch = Scratch::new()?;
    let train_images = scratch.write("train-images", parts[0])?;
    let train_labels = scratch.write("train-labels", part(1).unwrap_or_default())?;
    let test_images = scratch.write("test-images", part(2).unwrap_or(parts[0]))?;
    let test_labels = scratch.write("test-labels", part(3).or(part(1)).unwrap_or_default())?;
    let spec = DataSpec::Idx {
        label_noise: 0.0,
        train_images,
        train_labels,
        test_images,
        test_labels,
        n_train: (opts & 1 != 0).then_some(2),
        n_test: (opts & 2 != 0).then_some(1),
        standardize: opts & 4 != 0,
    };
    let split = spec
        .load(u64::from(opts))
        .map_err(|e| format!("load: {e}"))?;
    assert_eq!(split.train.x.len(), split.train.len() * split.train.dim);
    assert!(split
        .train
        .x
        .iter()
        .chain(&split.test.x)
        .all(|v| v.is_finite()));
    after_load(spec, &split)
}

/// Reads the fuzzer's bytes as a sequence of small decisions; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }

    fn f32_bits(&mut self) -> f32 {
        f32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// Magnitudes that break naive arithmetic: overflow of squares and sums, underflow, subnormals.
const EXTREMES: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e-30,
    -1e-30,
    1e30,
    -1e30,
    1e-45,
    f32::MIN_POSITIVE,
    1e19,
    3e38,
    -3e38,
    f32::MAX,
    f32::MIN,
    1e-7,
    0.5,
    16_777_216.0,
];

/// One coordinate: mostly small integers (ties, duplicates), the previous value, extremes, or
/// raw bits (non-finite raw values become 0 unless `keep_nonfinite`).
fn value(u: &mut Bytes<'_>, prev: f32, scale: f32, keep_nonfinite: bool) -> f32 {
    let b = u.byte();
    let v = match b >> 5 {
        0 | 1 => ((b & 31) as f32 - 16.0) * scale,
        2 => prev,
        3 => 0.0,
        4 => EXTREMES[(b & 31) as usize % EXTREMES.len()],
        5 => (b & 31) as f32 * scale * 1e-3,
        _ => u.f32_bits(),
    };
    if v.is_finite() || keep_nonfinite {
        v
    } else {
        0.0
    }
}

/// A cloud of `n` points in `d` dimensions with labels in `0..classes`, shaped by a byte: free
/// coordinates, all points equal, every point repeated, or collinear points.
fn cloud(u: &mut Bytes<'_>, n: usize, d: usize, classes: usize, finite: bool) -> Cloud {
    let shape = u.byte();
    let scale = u.pick(&[1.0f32, 1e-20, 1e20, 1e-38, 1e38, 3e-3]);
    let mut data = Vec::with_capacity(n * d);
    let mut prev = 0.0;
    for i in 0..n {
        for j in 0..d {
            let v = match shape % 4 {
                1 if i > 0 => data[j],                    // all points equal
                2 if i % 2 == 1 => data[(i - 1) * d + j], // every point twice
                3 if i > 0 => data[j] * i as f32,         // on one line through 0
                _ => value(u, prev, scale, !finite),
            };
            let v = if finite && !v.is_finite() { 0.0 } else { v };
            prev = v;
            data.push(v);
        }
    }
    let labels = (0..n).map(|_| u.below(classes)).collect();
    Cloud::new(Points::new(data, n, d), labels, classes)
}

/// Whether an estimate is well formed: either an error, or a value that is not NaN.
fn check(what: &str, e: &Estimate) {
    if e.error.is_none() {
        assert!(
            !e.value.is_nan(),
            "{what} {} returned NaN without an error: {e:?}",
            e.estimator
        );
    }
}

/// The divergence estimators on small, often degenerate clouds (n ≤ 64 per side, d ≤ 8): the
/// bytes pick the `[metrics]` settings (every KL and W1 estimator, k, β, a small number of
/// half-samples), the shapes and the coordinates. With the first byte's top bit clear the
/// input goes the way of `funnel estimate` (one class, finite values as the file readers
/// guarantee, the subsample and point-count checks); with it set, the way of a run's layer
/// (class labels, a non-linear flag, optionally a noisy layer's pre-noise clouds, non-finite
/// values allowed, and the mutual-information estimates).
pub fn estimators(data: &[u8]) -> Result<(), String> {
    let mut u = Bytes(data);
    let mode = u.byte();
    let as_layer = mode & 0x80 != 0;
    let mut spec = MetricsSpec {
        kl: u.pick(&[
            KlEstimator::Auto,
            KlEstimator::Knn,
            KlEstimator::KnnAtoms,
            KlEstimator::Gaussian,
            KlEstimator::Smoothed,
        ]),
        w1: u.pick(&[
            W1Estimator::Exact,
            W1Estimator::Sinkhorn,
            W1Estimator::Sliced,
        ]),
        k: 1 + u.below(6),
        beta: u.pick(&[
            None,
            Some(1e-30),
            Some(1e-6),
            Some(0.1),
            Some(1.0),
            Some(1e6),
            Some(1e30),
        ]),
        bootstrap: u.below(4),
        mc_draws: 1 + u.below(3),
        max_points: 4 + u.below(61),
        exact_max_per_class: 2 + u.below(63),
        sinkhorn_epsilon: u.pick(&[1e-9, 1e-4, 0.01, 0.1, 1.0, 10.0]),
        sinkhorn_max_per_class: 2 + u.below(63),
        sinkhorn_iterations: 1 + u.below(100),
        sliced_directions: 1 + u.below(8),
        confidence: u.pick(&[0.95, 0.5, 1e-9, 0.999_999]),
        ..MetricsSpec::default()
    };
    // as many permutations as half-samples (0–3): no new input byte, so the corpus keeps
    // decoding to the same settings
    spec.permutations = spec.bootstrap;
    if !as_layer && spec.kl == KlEstimator::Smoothed && spec.beta.is_none() {
        spec.beta = Some(1.0); // `funnel estimate` refuses smoothed without --beta
    }
    spec.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
    let d = 1 + u.below(8);
    let classes = if as_layer { 1 + u.below(3) } else { 1 };
    let (n_p, n_q) = (u.below(65), u.below(65));
    let finite = !as_layer || u.byte() & 1 == 0;
    let device = BackendName::Flex.device(None)?;
    let seed = u64::from(u.byte());
    let p = cloud(&mut u, n_p, d, classes, finite);
    let q = match u.byte() % 4 {
        // Q a copy of P's first points: zero divergence, ties everywhere
        0 => {
            let m = n_q.min(n_p);
            p.select(&(0..m).collect::<Vec<_>>())
        }
        _ => cloud(&mut u, n_q, d, classes, finite),
    };
    if !as_layer {
        // `funnel estimate`: the subsample per side and the point-count check
        let need = points_needed(&spec);
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "subsample"));
        let mut side = |c: &Cloud| -> Result<Cloud, String> {
            let idx = stratified_subsample(&vec![0; c.len()], 1, spec.max_points, &mut rng);
            if idx.len() < need {
                return Err(format!("{} points; need {need}", idx.len()));
            }
            Ok(c.select(&idx))
        };
        let (pc, qc) = (side(&p)?, side(&q)?);
        let div = layer_divergence(&pc, &qc, &spec, LayerContext::default(), &device, seed);
        check("KL", &div.kl);
        check("W1", &div.w1);
        return Ok(());
    }
    // a run's layer: with noise, the pre-noise clouds are other points of the same examples
    let noisy = u.byte() & 1 == 1;
    let beta = u.pick(&[1e-3, 0.5, 1.0, 1e3]);
    let jitter = |c: &Cloud, u: &mut Bytes<'_>| {
        let scale = u.pick(&[0.0f32, 1e-3, 1.0, 1e30]);
        let data = c
            .points
            .data
            .iter()
            .map(|v| v + scale * (u.byte() as f32 - 128.0))
            .collect();
        Cloud::new(
            Points::new(data, c.points.n, c.points.d),
            c.labels.clone(),
            c.num_classes,
        )
    };
    let (p_pre, q_pre) = (jitter(&p, &mut u), jitter(&q, &mut u));
    let context = LayerContext {
        noise: noisy.then_some(NoisyLayer {
            beta,
            train_pre: &p_pre,
            test_pre: &q_pre,
        }),
        nonlinear: mode & 1 == 1,
        masked: mode & 2 == 2,
        halves: None,
    };
    let div = layer_divergence(&p, &q, &spec, context, &device, seed);
    check("KL", &div.kl);
    check("W1", &div.w1);
    if spec.mi {
        let ty = label_information(&p, context, &spec, &device, seed);
        check("I(T;Y)", &ty);
        if noisy {
            let group = 1 + u.below(3);
            let xt = input_information(&p_pre, group, beta, &spec, &device, seed);
            check("I(X;T)", &xt);
        }
    }
    Ok(())
}
