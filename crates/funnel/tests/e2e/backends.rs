//! Backends: selection by config key or flag, clear refusals for backends the binary lacks, and
//! equivalence: the same seeded, deterministic config gives the same training curve and the same
//! per-layer estimates on every compiled backend.
//!
//! The equivalence tests need the other backends built in:
//! `cargo test --release --workspace --features funnel/ndarray,funnel/wgpu --test e2e backends::`
//! (CI runs it, wgpu on the lavapipe software Vulkan driver).

use crate::common;

#[cfg(any(feature = "ndarray", feature = "wgpu"))]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Deterministic (no stochastic layer): weights are drawn on the host, so only float
/// arithmetic may differ between backends.
const PLAIN: &str = r#"
name = "plain"
seed = 3
[data]
kind = "gaussian"
dim = 6
n_train = 400
n_test = 400
mean_norm = 2.0
[model]
widths = [16, 8]
activation = "tanh"
[train]
epochs = 5
batch_size = 32
lr = 0.01
[metrics]
max_points = 400
exact_max_per_class = 200
bootstrap = 6
permutations = 9
kl = "knn"
w1 = "exact"
"#;

/// Relative tolerance of the cross-backend comparison, with an absolute floor for values near 0.
#[cfg(any(feature = "ndarray", feature = "wgpu"))]
const RTOL: f64 = 1e-3;
#[cfg(any(feature = "ndarray", feature = "wgpu"))]
const ATOL: f64 = 1e-4;

fn run_on(dir: &Path, backend: &str) -> PathBuf {
    let cfg = write_config(dir, "plain.toml", PLAIN);
    let out = dir.join(format!("out-{backend}"));
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out), "--backend", backend]);
    assert!(o.status.success(), "{backend}: {}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("backend {backend}")),
        "the run names its backend: {stdout}"
    );
    let run = runs(&out, "plain").pop().unwrap();
    // The run proves which burn device computed it: `--backend ndarray` once ran flex.
    let kind = match backend {
        "flex" => "Flex(",
        "ndarray" => "NdArray(",
        "wgpu" => "Cube(",
        other => panic!("no device kind known for {other}"),
    };
    let summary = read_json(&run.join("summary.json"));
    let device = summary["device"].as_str().unwrap_or_default();
    assert!(
        device.starts_with(kind),
        "--backend {backend} ran device `{device}`, not {kind}…)"
    );
    assert!(
        stdout.contains(&format!("backend {backend} ({device})")),
        "the run header names the device: {stdout}"
    );
    run
}

#[cfg(any(feature = "ndarray", feature = "wgpu"))]
/// Every numeric cell of a CSV by (row, column), timings left out.
fn numbers(path: &Path) -> BTreeMap<(usize, String), f64> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let mut map = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        for (v, h) in rec.unwrap().iter().zip(headers.iter()) {
            if h.contains("seconds") {
                continue;
            }
            if let Ok(x) = v.parse::<f64>() {
                map.insert((i, h.to_string()), x);
            }
        }
    }
    map
}

#[cfg(any(feature = "ndarray", feature = "wgpu"))]
/// Asserts two results folders agree cell by cell; returns the largest relative difference.
fn assert_equivalent(a: &Path, b: &Path, what: &str) -> f64 {
    let mut worst: f64 = 0.0;
    for file in ["training.csv", "layers.csv"] {
        let (x, y) = (numbers(&a.join(file)), numbers(&b.join(file)));
        assert_eq!(
            x.keys().collect::<Vec<_>>(),
            y.keys().collect::<Vec<_>>(),
            "{what}: {file} has other cells"
        );
        assert!(x.len() > 20, "{file}: too few numbers to compare");
        for (key, u) in &x {
            let v = y[key];
            // both NaN, or the same infinity (an unbounded ratio interval)
            if (u.is_nan() && v.is_nan()) || (u.is_infinite() && *u == v) {
                continue;
            }
            // a permutation p-value counts null values ≥ the estimate: a null value within
            // float noise of the estimate may count on one backend and not on the other, so p
            // may differ by one permutation step (1/(1 + 9) here); the points needed exist only
            // below the resolution, a threshold the same noise may cross
            if key.1.ends_with("_p") {
                assert!(
                    (u - v).abs() <= 0.1 + 1e-12,
                    "{what}: {file} `{}`: {u} vs {v}",
                    key.1
                );
                continue;
            }
            if key.1.ends_with("_points_needed") {
                continue;
            }
            let diff = (u - v).abs();
            assert!(
                diff <= ATOL + RTOL * u.abs().max(v.abs()),
                "{what}: {file} row {} `{}`: {u} vs {v}",
                key.0,
                key.1
            );
            worst = worst.max(diff / u.abs().max(v.abs()).max(1e-12));
        }
    }
    worst
}

#[test]
fn a_backend_missing_from_the_build_names_its_cargo_feature() {
    for (name, built) in [
        ("flex", cfg!(feature = "flex")),
        ("ndarray", cfg!(feature = "ndarray")),
        ("wgpu", cfg!(feature = "wgpu")),
    ] {
        if built {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), "plain.toml", PLAIN);
        let out = dir.path().join("out");
        // by flag, and by config key
        let by_key = write_config(
            dir.path(),
            "keyed.toml",
            &PLAIN.replace("seed = 3", &format!("seed = 3\nbackend = \"{name}\"")),
        );
        for args in [
            vec!["run", arg(&cfg), "--backend", name],
            vec!["run", arg(&by_key)],
        ] {
            let mut args = args.clone();
            args.extend(["--out", arg(&out)]);
            let o = funnel(&args);
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&format!("--features {name}")),
                "the message names the feature: {err}"
            );
            assert!(!out.exists(), "nothing is written");
        }
    }
}

#[test]
fn devices_lists_what_the_binary_has() {
    let o = funnel(&["devices"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for (name, built) in [
        ("flex", cfg!(feature = "flex")),
        ("ndarray", cfg!(feature = "ndarray")),
    ] {
        let line = s.lines().find(|l| l.starts_with(name)).unwrap();
        assert_eq!(line.contains("not built"), !built, "{line}");
    }
    assert!(s.lines().any(|l| l.starts_with("wgpu")), "{s}");
}

#[test]
fn a_cpu_backend_has_only_device_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "plain.toml", PLAIN);
    let out = dir.path().join("out");
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out), "--device", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("device 2"));
    assert!(!out.exists());
}

#[test]
fn the_default_backend_is_flex_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_on(dir.path(), "flex");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["backend"], "flex");
    let frozen = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(frozen.contains("backend = \"flex\""), "{frozen}");
}

#[cfg(feature = "ndarray")]
#[test]
fn flex_and_ndarray_give_the_same_curve_and_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_on(dir.path(), "flex");
    let b = run_on(dir.path(), "ndarray");
    let worst = assert_equivalent(&a, &b, "flex vs ndarray");
    eprintln!("flex vs ndarray: largest relative difference {worst:.2e}");
}

#[cfg(feature = "wgpu")]
#[test]
fn flex_and_wgpu_give_the_same_curve_and_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_on(dir.path(), "flex");
    let b = run_on(dir.path(), "wgpu");
    let worst = assert_equivalent(&a, &b, "flex vs wgpu");
    eprintln!("flex vs wgpu: largest relative difference {worst:.2e}");
}
