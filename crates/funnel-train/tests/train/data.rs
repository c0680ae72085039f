use std::io::Write;
use std::path::{Path, PathBuf};

use funnel_train::data::LabelColumn;
use funnel_train::{DataError, DataSpec};

fn gaussian(n_train: usize, n_test: usize, standardize: bool) -> DataSpec {
    DataSpec::Gaussian {
        label_noise: 0.0,
        dim: 8,
        n_train,
        n_test,
        mean_norm: 2.0,
        noise_std: 0.5,
        standardize,
        test_shift: 0.0,
    }
}

#[test]
fn binary_gaussian_has_the_configured_moments() {
    let split = gaussian(20_000, 100, false).load(1).unwrap();
    let d = 8;
    let tr = &split.train;
    assert_eq!((tr.len(), tr.dim, tr.num_classes), (20_000, d, 2));
    let counts = tr.class_counts();
    assert!(
        (counts[0] as f64 / 20_000.0 - 0.5).abs() < 0.02,
        "{counts:?}"
    );
    // class k mean = (2k−1)·μ with μ = ‖μ‖/√d·1, per-coordinate std = s
    let c = 2.0 / (d as f64).sqrt();
    for k in 0..2 {
        let rows: Vec<usize> = (0..tr.len()).filter(|&i| tr.y[i] == k).collect();
        for j in 0..d {
            let vals: Vec<f64> = rows.iter().map(|&i| tr.row(i)[j] as f64).collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
            let want = if k == 0 { -c } else { c };
            assert!(
                (m - want).abs() < 0.03,
                "class {k} coord {j}: mean {m}, want {want}"
            );
            assert!((sd - 0.5).abs() < 0.02, "sd {sd}");
        }
    }
    let means = split.info.class_means.as_ref().unwrap();
    let norm: f64 = means[1].iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 2.0).abs() < 1e-12);
}

#[test]
fn data_is_reproducible_from_the_seed() {
    let a = gaussian(50, 30, false).load(9).unwrap();
    let b = gaussian(50, 30, false).load(9).unwrap();
    let c = gaussian(50, 30, false).load(10).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    assert_ne!(a.train, c.train);
    assert_ne!(a.train.x, a.test.x[..a.test.x.len()].to_vec());
}

#[test]
fn multiclass_gaussian_means_lie_on_the_sphere() {
    let spec = DataSpec::GaussianMulticlass {
        label_noise: 0.0,
        classes: 5,
        dim: 6,
        n_train: 500,
        n_test: 100,
        mean_norm: 3.0,
        noise_std: 1.0,
        standardize: false,
    };
    let split = spec.load(2).unwrap();
    assert_eq!(split.train.num_classes, 5);
    assert!(split.train.y.iter().all(|&y| y < 5));
    for m in split.info.class_means.unwrap() {
        let norm: f64 = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 3.0).abs() < 1e-9);
    }
}

#[test]
fn standardization_is_fitted_on_the_training_split_only() {
    let split = gaussian(3000, 3000, true).load(3).unwrap();
    assert!(split.info.standardized);
    let d = split.train.dim;
    for ds_is_train in [true, false] {
        let ds = if ds_is_train {
            &split.train
        } else {
            &split.test
        };
        for j in 0..d {
            let vals: Vec<f64> = (0..ds.len()).map(|i| ds.row(i)[j] as f64).collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
            if ds_is_train {
                assert!(m.abs() < 1e-5 && (sd - 1.0).abs() < 1e-4, "train {m} {sd}");
            } else {
                // the test split is transformed with the training statistics: close, not exact
                assert!(m.abs() < 0.1 && (sd - 1.0).abs() < 0.1);
                assert!(m.abs() > 1e-7, "test split must not be re-fitted");
            }
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn csv_spec(path: PathBuf) -> DataSpec {
    DataSpec::Csv {
        label_noise: 0.0,
        path,
        test_path: None,
        label_column: None,
        header: None,
        n_train: None,
        n_test: None,
        test_fraction: None,
        standardize: false,
    }
}

#[test]
fn csv_with_header_label_by_name_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,label,b\n");
    for i in 0..40 {
        text.push_str(&format!(
            "{},{},{}\n",
            i,
            if i % 2 == 0 { 7 } else { -3 },
            i * 10
        ));
    }
    let p = write(dir.path(), "d.csv", &text);
    let split = csv_spec(p).load(4).unwrap();
    assert_eq!(split.train.len() + split.test.len(), 40);
    assert_eq!(split.test.len(), 10); // default test_fraction 0.25
    assert_eq!(split.train.dim, 2);
    assert_eq!(split.info.class_values, Some(vec![-3, 7]));
    // features are (a, b) with b = 10·a, label 7 (class 1) for even a
    for ds in [&split.train, &split.test] {
        for i in 0..ds.len() {
            let r = ds.row(i);
            assert_eq!(r[1], r[0] * 10.0);
            assert_eq!(ds.y[i], if r[0] as i64 % 2 == 0 { 1 } else { 0 });
        }
    }
}

#[test]
fn csv_without_header_uses_the_last_column_and_a_test_file() {
    let dir = tempfile::tempdir().unwrap();
    let tr = write(dir.path(), "tr.csv", "1.5,2,0\n3,4,1\n5,6,1\n");
    let te = write(dir.path(), "te.csv", "# a comment line\n7,8,2\n");
    let spec = DataSpec::Csv {
        label_noise: 0.0,
        path: tr,
        test_path: Some(te),
        label_column: Some(LabelColumn::Index(-1)),
        header: None,
        n_train: None,
        n_test: None,
        test_fraction: None,
        standardize: false,
    };
    let split = spec.load(0).unwrap();
    assert_eq!(split.train.x, vec![1.5, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(split.train.y, vec![0, 1, 1]);
    assert_eq!(split.test.y, vec![2]);
    assert_eq!(split.train.num_classes, 3);
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.csv", text);
    let err = csv_spec(p).load(0).unwrap_err();
    err.to_string()
}

#[test]
fn csv_errors_name_the_file_and_line() {
    let e = load_err("x,y,label\n1,2,0\n3,4\n5,6,1\n");
    assert!(
        e.contains("bad.csv:3") && e.contains("expected 3 columns"),
        "{e}"
    );
    let e = load_err("1,2,0\n3,abc,1\n");
    assert!(
        e.contains("bad.csv:2") && e.contains("`abc` is not a number"),
        "{e}"
    );
    let e = load_err("1,2,0\n3,NaN,1\n");
    assert!(e.contains("bad.csv:2") && e.contains("not finite"), "{e}");
    let e = load_err("1,2,0\n3,4,0.5\n");
    assert!(
        e.contains("bad.csv:2") && e.contains("not an integer"),
        "{e}"
    );
    let e = load_err("");
    assert!(e.contains("bad.csv") && e.contains("no rows"), "{e}");
    let e = load_err("1,2,0\n3,4,0\n");
    assert!(e.contains("single value"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let err = csv_spec(dir.path().join("missing.csv"))
        .load(0)
        .unwrap_err();
    assert!(
        matches!(err, DataError::File { .. }) && err.to_string().contains("missing.csv"),
        "{err}"
    );
}

#[test]
fn csv_label_column_problems_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", "1,2,0\n3,4,1\n");
    let mut spec = csv_spec(p);
    if let DataSpec::Csv { label_column, .. } = &mut spec {
        *label_column = Some(LabelColumn::Name("y".into()));
    }
    match spec.load(0).unwrap_err() {
        DataError::Invalid { key, message } => {
            assert_eq!(key, "label_column");
            assert!(message.contains("no header"), "{message}");
        }
        e => panic!("{e}"),
    }
}

fn idx_spec(dir: &Path, [a, b, c, d]: [&str; 4]) -> DataSpec {
    DataSpec::Idx {
        label_noise: 0.0,
        train_images: dir.join(a),
        train_labels: dir.join(b),
        test_images: dir.join(c),
        test_labels: dir.join(d),
        n_train: None,
        n_test: None,
        standardize: false,
    }
}

fn idx_bytes(type_code: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn idx_files_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    // 3 images of 2×2 unsigned bytes, labels 0, 1, 2
    let imgs: Vec<u8> = (0..12).map(|i| (i * 20) as u8).collect();
    std::fs::write(
        dir.path().join("tr-img"),
        idx_bytes(0x08, &[3, 2, 2], &imgs),
    )
    .unwrap();
    std::fs::write(dir.path().join("tr-lab"), idx_bytes(0x08, &[3], &[0, 1, 2])).unwrap();
    // test files gzipped
    let gz = |bytes: Vec<u8>| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&bytes).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(
        dir.path().join("te-img.gz"),
        gz(idx_bytes(0x08, &[1, 2, 2], &[255, 0, 51, 102])),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("te-lab.gz"),
        gz(idx_bytes(0x08, &[1], &[1])),
    )
    .unwrap();
    let spec = idx_spec(dir.path(), ["tr-img", "tr-lab", "te-img.gz", "te-lab.gz"]);
    let split = spec.load(0).unwrap();
    assert_eq!(split.train.dim, 4);
    assert_eq!(split.train.num_classes, 3);
    assert_eq!(split.train.y, vec![0, 1, 2]);
    assert!((split.train.row(1)[0] - 80.0 / 255.0).abs() < 1e-7);
    assert_eq!(split.test.x, vec![1.0, 0.0, 0.2, 0.4]);

    // a truncated file is an error naming it
    std::fs::write(dir.path().join("tr-lab"), idx_bytes(0x08, &[4], &[0, 1, 2])).unwrap();
    let err = spec.load(0).unwrap_err().to_string();
    assert!(err.contains("tr-lab") && err.contains("declares"), "{err}");
}

#[test]
fn subsampling_asks_no_more_than_available() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", "1,0\n2,1\n3,0\n4,1\n");
    let mut spec = csv_spec(p);
    if let DataSpec::Csv {
        n_test, n_train, ..
    } = &mut spec
    {
        *n_test = Some(1);
        *n_train = Some(5);
    }
    match spec.load(0).unwrap_err() {
        DataError::Invalid { key, .. } => assert_eq!(key, "n_train"),
        e => panic!("{e}"),
    }
}

#[test]
fn csv_header_must_be_unambiguous_and_the_test_file_must_match() {
    // a first row mixing text and numbers is neither clearly data nor clearly a header
    let e = load_err("1,NA,0\n3,4,1\n");
    assert!(e.contains("bad.csv:1") && e.contains("data.header"), "{e}");
    // the test file must have the training file's columns
    let dir = tempfile::tempdir().unwrap();
    let tr = write(dir.path(), "tr.csv", "label,a,b\n0,1,2\n1,3,4\n");
    for (name, text) in [("te1.csv", "1,0,3\n"), ("te2.csv", "b,a,label\n1,2,0\n")] {
        let te = write(dir.path(), name, text);
        let spec = DataSpec::Csv {
            label_noise: 0.0,
            path: tr.clone(),
            test_path: Some(te),
            label_column: None,
            header: None,
            n_train: None,
            n_test: None,
            test_fraction: None,
            standardize: false,
        };
        let e = spec.load(0).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("same columns"), "{e}");
    }
}

#[test]
fn csv_split_is_stratified_by_class() {
    // 200 rows of class 0 and 8 of class 1: every seed keeps class 1 in both splits
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..208 {
        text.push_str(&format!("{i},{}\n", usize::from(i >= 200)));
    }
    let p = write(dir.path(), "d.csv", &text);
    for seed in 0..20 {
        let split = csv_spec(p.clone()).load(seed).unwrap();
        assert_eq!(split.test.len(), 52);
        assert_eq!(split.test.class_counts(), vec![50, 2], "seed {seed}");
        assert_eq!(split.train.class_counts(), vec![150, 6], "seed {seed}");
    }
}

#[test]
fn values_beyond_f32_are_rejected() {
    let e = load_err("1,2,0\n3,1e39,1\n");
    assert!(e.contains("bad.csv:2") && e.contains("32-bit"), "{e}");
}

#[test]
fn idx_with_a_zero_inner_dimension_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("img"), idx_bytes(0x08, &[10, 0], &[])).unwrap();
    std::fs::write(
        dir.path().join("lab"),
        idx_bytes(0x08, &[10], &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
    )
    .unwrap();
    let spec = idx_spec(dir.path(), ["img", "lab", "img", "lab"]);
    let e = spec.load(0).unwrap_err().to_string();
    assert!(e.contains("img") && e.contains("is 0"), "{e}");
}

#[test]
fn label_noise_replaces_the_stated_fraction_by_other_classes_in_both_splits() {
    let spec = |q: f64| DataSpec::GaussianMulticlass {
        label_noise: q,
        classes: 4,
        dim: 3,
        n_train: 4000,
        n_test: 4000,
        mean_norm: 2.0,
        noise_std: 1.0,
        standardize: false,
    };
    let clean = spec(0.0).load(9).unwrap();
    let noisy = spec(0.3).load(9).unwrap();
    for (c, n) in [(&clean.train, &noisy.train), (&clean.test, &noisy.test)] {
        // the features are those of the clean data: only labels change
        assert_eq!(c.x, n.x);
        let changed = c.y.iter().zip(&n.y).filter(|(a, b)| a != b).count();
        // Binomial(4000, 0.3): sd ≈ 29; 5 sd
        assert!(
            (changed as f64 - 1200.0).abs() < 145.0,
            "{changed} of 4000 labels changed, expected ≈ 1200"
        );
        // every replaced class is one of the other three, each about equally often
        let mut to = [0usize; 4];
        for (a, b) in c.y.iter().zip(&n.y) {
            if a != b {
                to[*b] += 1;
            }
        }
        assert!(to.iter().all(|&t| t > 200), "{to:?}");
    }
    assert!(noisy.info.description.contains("label noise 0.3"));
    let bad = spec(1.5).load(9).unwrap_err();
    assert!(
        matches!(
            bad,
            DataError::Invalid {
                key: "label_noise",
                ..
            }
        ),
        "{bad:?}"
    );
}
