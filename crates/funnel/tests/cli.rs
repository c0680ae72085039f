//! End to end through the `funnel` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TINY: &str = r#"
name = "tiny"
seed = 5
[data]
kind = "gaussian"
dim = 4
n_train = 300
n_test = 300
mean_norm = 2.0
[model]
widths = [8, 6]
activation = "tanh"
regularizer = { kind = "dropout", p = 0.2 }
[train]
epochs = 4
batch_size = 32
lr = 0.01
[metrics]
max_points = 300
exact_max_per_class = 100
bootstrap = 6
"#;

fn funnel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .output()
        .expect("the funnel binary runs")
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The run folders under `out/<name>/`.
fn runs(out: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join(name))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_run_writes_every_file_with_the_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("KL [95% CI]") && stdout.contains("W1 bound"),
        "{stdout}"
    );
    assert!(stdout.contains("measured gap"), "{stdout}");
    let folders = runs(&out, "tiny");
    assert_eq!(
        folders.len(),
        1,
        "one run folder, no leftovers: {folders:?}"
    );
    let run = &folders[0];
    for f in [
        "config.toml",
        "model.bpk",
        "layers.csv",
        "summary.json",
        "training.csv",
        "report.md",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // no temporary files remain
    for e in std::fs::read_dir(run).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.ends_with(".tmp"), "leftover {name}");
    }

    // layers.csv: one row per layer 0..=L with the required columns
    let mut rdr = csv::Reader::from_path(run.join("layers.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let required = [
        "layer",
        "width",
        "kl",
        "kl_lo",
        "kl_hi",
        "kl_null",
        "kl_bound",
        "w1",
        "w1_lo",
        "w1_hi",
        "w1_null",
        "lipschitz",
        "w1_bound",
    ];
    for col in required {
        assert!(
            headers.iter().any(|h| h == col),
            "layers.csv lacks {col}: {headers:?}"
        );
    }
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4, "layers 0..=3 for widths [8, 6]");
    let widths: Vec<&str> = rows.iter().map(|r| &r[col("width")]).collect();
    assert_eq!(widths, ["4", "8", "6", "2"]);
    for (l, r) in rows.iter().enumerate() {
        assert_eq!(r[col("layer")].parse::<usize>().unwrap(), l);
        let v = |c: &str| r[col(c)].parse::<f64>().unwrap();
        assert!(v("kl").is_finite() && v("w1").is_finite(), "row {l}: {r:?}");
        assert!(v("kl_lo") <= v("kl_hi") && v("w1_lo") <= v("w1_hi"));
        assert!(v("w1") >= 0.0 && v("lipschitz") > 0.0);
        // the bounds follow from the columns: sqrt(max(D,0)/2) and ρ·W + c·TV
        assert!((v("kl_bound") - (v("kl").max(0.0) / 2.0).sqrt()).abs() < 1e-9);
        let want = v("lipschitz") * v("w1") + 5.0 * v("w1_label_tv");
        assert!((v("w1_bound") - want).abs() < 1e-9 * want.max(1.0));
        assert_eq!(&r[col("kl_estimator")], "knn(k=5)");
        assert!(r[col("kl_points_train")].parse::<usize>().unwrap() > 0);
    }

    // summary.json
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "ok");
    assert_eq!(s["seed"], 5);
    assert_eq!(s["backend"], "ndarray");
    assert!(s["gap"]["zero_one"].is_number() && s["gap"]["cross_entropy"].is_number());
    assert!(s["funnel_layer"].as_u64().unwrap() <= 3);
    assert!(s["bounds"]["kl"]["zero_one"].is_number());
    assert!(s["bounds"]["w1"]["cross_entropy_clipped"].is_number());
    assert!(s["timings"]["total_s"].as_f64().unwrap() > 0.0);
    assert_eq!(s["funnel_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["layers"].as_array().unwrap().len(), 4);
    let min_w1 = rows
        .iter()
        .map(|r| r[col("w1_bound")].parse::<f64>().unwrap())
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .0;
    assert_eq!(
        s["funnel_layer"].as_u64().unwrap() as usize,
        min_w1,
        "funnel = argmin of the W1 bound"
    );

    // training.csv has one line per epoch; config.toml is the resolved config and runs again
    let training = std::fs::read_to_string(run.join("training.csv")).unwrap();
    assert_eq!(training.lines().count(), 1 + 4);
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        resolved.contains("[metrics]") && resolved.contains("ce_clip"),
        "{resolved}"
    );
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    for _ in 0..2 {
        let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let folders = runs(&out, "tiny");
    assert_eq!(folders.len(), 2);
    let strip = |p: &Path| -> Vec<Vec<String>> {
        let mut rdr = csv::Reader::from_path(p.join("layers.csv")).unwrap();
        let headers = rdr.headers().unwrap().clone();
        rdr.records()
            .map(|r| {
                r.unwrap()
                    .iter()
                    .zip(headers.iter())
                    .filter(|(_, h)| !h.ends_with("_seconds"))
                    .map(|(v, _)| v.to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(strip(&folders[0]), strip(&folders[1]));
}

#[test]
fn overrides_apply_and_are_frozen_into_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let o = funnel(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "model.widths=[5]",
        "--set",
        "metrics.w1=sliced",
        "--set",
        "metrics.kl=gaussian",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let layers = std::fs::read_to_string(run.join("layers.csv")).unwrap();
    assert_eq!(layers.lines().count(), 1 + 3);
    assert!(
        layers.contains("sliced(128)")
            && layers.contains("lower_bound")
            && layers.contains("gaussian")
    );
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("widths = [5]"), "{resolved}");
}

fn assert_rejected(config_text: &str, extra: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "bad.toml", config_text);
    let out = dir.path().join("out");
    let mut args = vec!["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = funnel(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!out.exists(), "nothing may be written for bad input");
}

#[test]
fn bad_input_names_the_key_exits_2_and_writes_nothing() {
    assert_rejected(
        &TINY.replace("widths = [8, 6]", "widths = [8, 6]\nwidht = 3"),
        &[],
        "widht",
    );
    assert_rejected(
        &TINY.replace("epochs = 4", "epochs = -4"),
        &[],
        "train.epochs",
    );
    assert_rejected(
        &TINY.replace("p = 0.2", "p = 1.2"),
        &[],
        "model.regularizer.p",
    );
    assert_rejected(TINY, &["--set", "train.lr=0"], "train.lr");
    assert_rejected(TINY, &["--set", "data.n_train=1"], "data.n_train");
    assert_rejected(TINY, &["--set", "name=../../etc"], "name");
    assert_rejected(TINY, &["--set", "oops"], "key=value");
    assert_rejected(
        &TINY.replace(
            "kind = \"gaussian\"",
            "kind = \"csv\"\npath = \"nowhere.csv\"",
        ),
        &[],
        "unknown field",
    );
    assert_rejected("name = \"x\"\n[data\n", &[], "bad.toml:2");
    // metrics keys of the estimator library
    assert_rejected(TINY, &["--set", "metrics.kl=\"smoothed\""], "metrics.beta");
    assert_rejected(TINY, &["--set", "metrics.beta=-1"], "beta");
    assert_rejected(
        TINY,
        &["--set", "metrics.sinkhorn_epsilon=0"],
        "sinkhorn_epsilon",
    );
    assert_rejected(TINY, &["--set", "metrics.mc_draws=0"], "mc_draws");
    assert_rejected(TINY, &["--set", "metrics.kl=\"kde\""], "unknown variant");
}

#[test]
fn a_noisy_network_gets_smoothed_kl_sinkhorn_and_both_mutual_informations() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = TINY
        .replace(
            "regularizer = { kind = \"dropout\", p = 0.2 }",
            "regularizer = { kind = \"gaussian_noise\", std = 0.3 }",
        )
        .replace(
            "bootstrap = 6",
            "bootstrap = 4\nw1 = \"sinkhorn\"\nmc_draws = 2",
        );
    let cfg = write_config(dir.path(), "noisy.toml", &noisy);
    let out = dir.path().join("out");
    let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let mut rdr = csv::Reader::from_path(run.join("layers.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    for (l, r) in rows.iter().enumerate() {
        let v = |c: &str| r[col(c)].parse::<f64>().unwrap();
        let hidden = l == 1 || l == 2;
        // hidden layers carry the noise: smoothed KL and I(X; T); input and logits do not
        assert_eq!(
            r[col("kl_estimator")].starts_with("smoothed(β=0.3)"),
            hidden,
            "layer {l}: {}",
            &r[col("kl_estimator")]
        );
        assert_eq!(v("mi_xt").is_finite(), hidden, "layer {l}");
        assert!(
            v("mi_ty").is_finite() && v("mi_ty_lo") <= v("mi_ty_hi"),
            "layer {l}"
        );
        // I(T; Y) ≤ H(Y) = ln 2 up to estimator noise; I(X; T) ≤ ln(points)
        assert!(v("mi_ty") < 2f64.ln() + 0.3, "layer {l}: {}", v("mi_ty"));
        if hidden {
            assert!(
                v("mi_xt") > 0.0 && v("mi_xt") <= (300f64).ln() + 0.1,
                "layer {l}"
            );
        }
        assert_eq!(&r[col("w1_bias")], "upper_bound");
        assert!(r[col("w1_estimator")].starts_with("sinkhorn"));
    }
}

#[test]
fn the_quick_selftest_passes() {
    let o = funnel(&["selftest", "--quick", "--bootstrap", "6"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("pass") && !out.contains("FAIL"), "{out}");
    for case in [
        "KL gaussian pair",
        "KL smoothed pair",
        "W1 shifted gaussians",
        "KL uniform boxes",
    ] {
        assert!(out.contains(case), "missing {case}: {out}");
    }
}

#[test]
fn absurd_sizes_are_rejected_before_anything_is_allocated() {
    assert_rejected(
        TINY,
        &["--set", "data.n_train=1000000000000"],
        "data.n_train",
    );
    assert_rejected(
        TINY,
        &["--set", "train.epochs=100000000000"],
        "train.epochs",
    );
    assert_rejected(
        TINY,
        &["--set", "model.widths=[60000,60000]"],
        "model.widths",
    );
    // within the width cap, but 16000·16000·2 parameters exceed the model-size limit
    assert_rejected(
        TINY,
        &["--set", "model.widths=[16000,16000,16000]"],
        "model.widths",
    );
    assert_rejected(
        TINY,
        &[
            "--set",
            "model.widths=[4096,4096]",
            "--set",
            "model.regularizer={kind=\"dropconnect\",p=0.5}",
        ],
        "train.batch_size",
    );
    assert_rejected(
        TINY,
        &["--set", "metrics.sliced_directions=1000000000"],
        "metrics.sliced_directions",
    );
    assert_rejected(TINY, &["--set", "data.mean_norm=1e39"], "data.mean_norm");
}

#[test]
fn too_few_captured_points_per_class_is_an_input_error() {
    assert_rejected(
        TINY,
        &["--set", "metrics.max_points=20"],
        "metrics.max_points",
    );
}

#[test]
fn the_frozen_config_runs_again_from_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b,label\n");
    for i in 0..200 {
        csv.push_str(&format!("{},{},{}\n", i % 7, (i * 3) % 11, i % 2));
    }
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    std::fs::write(dir.path().join("configs/d.csv"), csv).unwrap();
    let cfg = TINY.replace(
        "kind = \"gaussian\"\ndim = 4\nn_train = 300\nn_test = 300\nmean_norm = 2.0",
        "kind = \"csv\"\npath = \"d.csv\"",
    );
    write_config(&dir.path().join("configs"), "c.toml", &cfg);
    let out = dir.path().join("out");
    // a relative config path, run from the temporary folder
    let o = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .current_dir(dir.path())
        .args(["run", "configs/c.toml", "--out", "out"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let frozen = runs(&out, "tiny")[0].join("config.toml");
    let o = funnel(&[
        "run",
        frozen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(runs(&out, "tiny").len(), 2);
}

#[test]
fn a_closed_stdout_does_not_lose_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `| head -0`
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let folders = runs(&out, "tiny");
    assert_eq!(folders.len(), 1);
    assert!(folders[0].join("summary.json").is_file());
}

#[test]
fn a_bad_data_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.csv"), "a,b,label\n1,2,0\n3,x,1\n").unwrap();
    let cfg = TINY.replace(
        "kind = \"gaussian\"\ndim = 4\nn_train = 300\nn_test = 300\nmean_norm = 2.0",
        "kind = \"csv\"\npath = \"d.csv\"",
    );
    let cfg_path = write_config(dir.path(), "c.toml", &cfg);
    let out = dir.path().join("out");
    let o = funnel(&[
        "run",
        cfg_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("d.csv:3") && err.contains("`x` is not a number"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn missing_config_and_unknown_backend_are_usage_errors() {
    let o = funnel(&["run", "/nonexistent/config.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/config.toml"));
    let o = funnel(&["run", "x.toml", "--backend", "quantum"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("quantum"));
}

#[test]
fn diverged_training_is_a_failed_run_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "tiny.toml",
        &TINY
            .replace("lr = 0.01", "lr = 1e30\nalgorithm = \"sgd\"")
            .replace("\"tanh\"", "\"relu\""),
    );
    let out = dir.path().join("out");
    let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "failed");
    assert!(s["reason"].as_str().unwrap().contains("diverged"), "{s}");
    assert!(run.join("training.csv").is_file() && run.join("report.md").is_file());
}

// ---------------------------------------------------------------- funnel estimate

/// A `.npy` file: header for `descr`, `fortran_order`, `shape` (Python tuple text), then `data`.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn estimate_json(p: &Path, q: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec![
        "estimate",
        "--p",
        p.to_str().unwrap(),
        "--q",
        q.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = funnel(&args);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", text(&o)));
    (o, v)
}

#[test]
fn estimate_on_csv_clouds_shifted_by_one_gives_w1_one() {
    let dir = tempfile::tempdir().unwrap();
    let xs: Vec<f64> = (0..300).map(|i| ((i * 37) % 101) as f64 / 25.0).collect();
    let p = dir.path().join("p.csv");
    let q = dir.path().join("q.csv");
    // P with a header, Q without: both are one column of numbers
    let body = |shift: f64| {
        xs.iter()
            .map(|x| format!("{}\n", x + shift))
            .collect::<String>()
    };
    std::fs::write(&p, format!("activation\n{}", body(0.0))).unwrap();
    std::fs::write(&q, body(1.0)).unwrap();
    let (o, v) = estimate_json(&p, &q, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let w1 = &v["w1"];
    assert!(
        (w1["value"].as_f64().unwrap() - 1.0).abs() < 1e-5,
        "exact W1 of a shift by 1: {w1}"
    );
    assert_eq!(w1["bias"], "exact");
    for side in ["kl", "w1"] {
        for key in [
            "value",
            "lo",
            "hi",
            "null",
            "estimator",
            "points",
            "bias",
            "seconds",
        ] {
            assert!(!v[side][key].is_null(), "{side}.{key} missing: {v}");
        }
        assert_eq!(v[side]["points"]["p"], 300);
        assert_eq!(v[side]["points"]["q"], 300);
        assert!(v[side]["error"].is_null());
    }
    assert!(v["kl"]["value"].as_f64().unwrap() > 0.3, "{v}");
    assert_eq!(v["p"]["n"], 300);
    assert_eq!(v["q"]["dims"], 1);

    // --max-points caps the points per side; the table names both estimators
    let (o, v) = estimate_json(&p, &q, &["--max-points", "100", "--w1", "sliced"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(v["w1"]["points"]["p"], 100);
    assert_eq!(v["w1"]["bias"], "lower_bound");
    let o = funnel(&[
        "estimate",
        "--p",
        p.to_str().unwrap(),
        "--q",
        q.to_str().unwrap(),
        "--kl",
        "gaussian",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("KL(P‖Q)") && table.contains("W1(P, Q)") && table.contains("gaussian"),
        "{table}"
    );
}

#[test]
fn estimate_on_npy_clouds_identical_gives_w1_zero() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let xs: Vec<f64> = (0..n * 3)
        .map(|i| ((i * 7919) % 211) as f64 / 50.0)
        .collect();
    let p = dir.path().join("p.npy");
    let q = dir.path().join("q.npy");
    std::fs::write(&p, npy("<f8", false, "(60, 3)", &f64_bytes(&xs))).unwrap();
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    std::fs::write(&q, npy("<f4", false, "(60, 3)", &f32_bytes(&xs32))).unwrap();
    let (o, v) = estimate_json(&p, &q, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(v["w1"]["value"].as_f64().unwrap().abs() < 1e-6, "{v}");
    assert_eq!(v["w1"]["points"]["q"], n);
    assert_eq!(v["p"]["dims"], 3);

    // a 1-D array is n × 1; against the same values shifted by 1 in a CSV file
    let one: Vec<f64> = (0..n).map(|i| i as f64 / 7.0).collect();
    let p1 = dir.path().join("p1.npy");
    std::fs::write(&p1, npy("<f8", false, "(60,)", &f64_bytes(&one))).unwrap();
    let q1 = dir.path().join("q1.csv");
    std::fs::write(
        &q1,
        one.iter()
            .map(|x| format!("{}\n", x + 1.0))
            .collect::<String>(),
    )
    .unwrap();
    let (o, v) = estimate_json(&p1, &q1, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        (v["w1"]["value"].as_f64().unwrap() - 1.0).abs() < 1e-5,
        "{v}"
    );
}

/// Exit 2, nothing on stdout, and every needle in the error.
fn assert_bad_estimate(p: &Path, q: &Path, extra: &[&str], needles: &[&str]) {
    let mut args = vec![
        "estimate",
        "--p",
        p.to_str().unwrap(),
        "--q",
        q.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = funnel(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(o.stdout.is_empty(), "stdout: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

#[test]
fn estimate_rejects_bad_files_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let rows: String = (0..40).map(|i| format!("{i},{}\n", i % 7)).collect();
    std::fs::write(&good, &rows).unwrap();
    let write = |name: &str, body: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let ragged = write("ragged.csv", format!("a,b\n1,2\n3\n{rows}").as_bytes());
    assert_bad_estimate(&ragged, &good, &[], &["ragged.csv:3", "found 1"]);
    let text_cell = write("text.csv", format!("1,2\n3,4\n5,oops\n{rows}").as_bytes());
    assert_bad_estimate(
        &good,
        &text_cell,
        &[],
        &["text.csv:3", "`oops` is not a number"],
    );
    let nan = write("nan.csv", format!("1,2\nNaN,4\n{rows}").as_bytes());
    assert_bad_estimate(&nan, &good, &[], &["nan.csv:2", "not finite"]);
    let inf = write("inf.csv", format!("1,2\n1e39,4\n{rows}").as_bytes());
    assert_bad_estimate(&inf, &good, &[], &["inf.csv:2", "not finite"]);
    let empty = write("empty.csv", b"");
    assert_bad_estimate(&empty, &good, &[], &["empty.csv", "no data rows"]);
    let three: String = (0..40).map(|i| format!("{i},1,2\n")).collect();
    let wide = write("wide.csv", three.as_bytes());
    assert_bad_estimate(
        &good,
        &wide,
        &[],
        &["wide.csv:1", "3 dimensions", "good.csv"],
    );
    let missing = dir.path().join("missing.csv");
    assert_bad_estimate(&missing, &good, &[], &["missing.csv"]);

    let ints = write("ints.npy", &npy("<i8", false, "(2, 1)", &[0u8; 16]));
    assert_bad_estimate(
        &ints,
        &good,
        &[],
        &["ints.npy", "`<i8`", "float32 or float64"],
    );
    let fortran = write("f.npy", &npy("<f8", true, "(2, 2)", &f64_bytes(&[1.0; 4])));
    assert_bad_estimate(&fortran, &good, &[], &["f.npy", "Fortran"]);
    let short = write(
        "short.npy",
        &npy("<f8", false, "(1000, 2)", &f64_bytes(&[1.0; 4])),
    );
    assert_bad_estimate(&short, &good, &[], &["short.npy", "truncated"]);
    let cube = write(
        "cube.npy",
        &npy("<f4", false, "(2, 2, 2)", &f32_bytes(&[1.0; 8])),
    );
    assert_bad_estimate(&cube, &good, &[], &["cube.npy", "2-D"]);
    let nan_npy = write(
        "nan.npy",
        &npy(
            "<f4",
            false,
            "(2, 2)",
            &f32_bytes(&[1.0, 2.0, f32::NAN, 4.0]),
        ),
    );
    assert_bad_estimate(&nan_npy, &good, &[], &["nan.npy", "[1, 0]", "not finite"]);
    let garbage = write("garbage.npy", b"not numpy at all");
    assert_bad_estimate(&garbage, &good, &[], &["garbage.npy"]);

    // flags: the library's validation names the flag; unknown estimators list the known ones
    assert_bad_estimate(&good, &good, &["--k", "0"], &["--k"]);
    assert_bad_estimate(&good, &good, &["--max-points", "2"], &["--max-points"]);
    assert_bad_estimate(&good, &good, &["--beta", "-1"], &["--beta"]);
    assert_bad_estimate(
        &good,
        &good,
        &["--kl", "bogus"],
        &["knn", "gaussian", "smoothed"],
    );
    let few = write("few.csv", b"1,2\n3,4\n5,6\n");
    assert_bad_estimate(&few, &good, &[], &["few.csv", "3 points"]);
}

#[test]
fn a_failed_estimator_still_reports_both_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    // P lies on a line, Q fills the plane: the Gaussian KL is infinite, W1 is fine
    let flat: String = (0..60)
        .map(|i| {
            let t = ((i * 37) % 61) as f64 / 10.0;
            format!("{t},{}\n", 2.0 * t)
        })
        .collect();
    let full: String = (0..60)
        .map(|i| {
            format!(
                "{},{}\n",
                ((i * 37) % 61) as f64 / 10.0,
                ((i * 53) % 59) as f64 / 10.0
            )
        })
        .collect();
    let p = dir.path().join("flat.csv");
    let q = dir.path().join("full.csv");
    std::fs::write(&p, flat).unwrap();
    std::fs::write(&q, full).unwrap();
    let (o, v) = estimate_json(&p, &q, &["--kl", "gaussian"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = v["kl"]["error"].as_str().unwrap();
    assert!(err.contains("singular") && err.contains("P cloud"), "{v}");
    assert!(v["kl"]["value"].is_null());
    assert!(v["w1"]["value"].as_f64().unwrap() > 0.0 && v["w1"]["error"].is_null());
    // every estimator works on a cloud against itself; smoothed needs its β
    for args in [
        &["--kl", "auto"][..],
        &["--kl", "knn"],
        &["--kl", "gaussian"],
        &["--kl", "smoothed", "--beta", "0.5"],
        &["--w1", "exact"],
        &["--w1", "sinkhorn"],
        &["--w1", "sliced"],
    ] {
        let (o, v) = estimate_json(&q, &q, &[args, &["--bootstrap", "2"]].concat());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        let w1 = v["w1"]["value"].as_f64().unwrap();
        if args.contains(&"sinkhorn") {
            // an upper bound: the entropic plan spreads mass over near neighbours
            assert!((0.0..0.5).contains(&w1), "{args:?}: {w1}");
            assert_eq!(v["w1"]["bias"], "upper_bound");
        } else {
            assert!(
                w1.abs() < 1e-9,
                "{args:?}: W1 of a cloud with itself is {w1}"
            );
        }
    }
    let o = funnel(&[
        "estimate",
        "--p",
        q.to_str().unwrap(),
        "--q",
        q.to_str().unwrap(),
        "--kl",
        "smoothed",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--beta"));
}

// ---------------------------------------------------------------- funnel measure

/// A two-class CSV: `n` rows of three features and a label (4 or 9).
fn labelled_csv(n: usize, offset: usize) -> String {
    let mut s = String::from("a,b,c,label\n");
    for i in offset..offset + n {
        let y = i % 2;
        let f = |k: usize| ((i * (7 + 4 * k)) % 23) as f64 / 7.0 + 1.5 * y as f64 + 10.0;
        s.push_str(&format!(
            "{},{},{},{}\n",
            f(0),
            f(1),
            f(2),
            if y == 1 { 9 } else { 4 }
        ));
    }
    s
}

const CSV_RUN: &str = r#"
name = "shift"
seed = 11
[data]
kind = "csv"
path = "train.csv"
test_path = "test.csv"
standardize = true
[model]
widths = [8, 6]
activation = "tanh"
regularizer = { kind = "dropout", p = 0.2 }
[train]
epochs = 3
batch_size = 32
lr = 0.01
[metrics]
max_points = 200
exact_max_per_class = 60
bootstrap = 4
"#;

/// layers.csv without its timing columns.
fn layer_values(run: &Path) -> Vec<Vec<String>> {
    let mut rdr = csv::Reader::from_path(run.join("layers.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            r.unwrap()
                .iter()
                .zip(headers.iter())
                .filter(|(_, h)| !h.ends_with("_seconds"))
                .map(|(v, _)| v.to_string())
                .collect()
        })
        .collect()
}

#[test]
fn measure_against_the_runs_own_test_set_reproduces_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), labelled_csv(240, 0)).unwrap();
    std::fs::write(dir.path().join("test.csv"), labelled_csv(160, 1000)).unwrap();
    let cfg = write_config(dir.path(), "c.toml", CSV_RUN);
    let out = dir.path().join("out");
    let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "shift")[0];
    assert!(run.join("model.bpk").is_file());

    let test = dir.path().join("test.csv");
    let o = funnel(&[
        "measure",
        run.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let measured = runs(&out, "shift-measure");
    assert_eq!(measured.len(), 1, "{measured:?}");
    let m = &measured[0];
    // same model, same training split and standardization, same seeds: the same numbers,
    // dropout masks included
    assert_eq!(layer_values(run), layer_values(m));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "ok");
    assert!(
        s["source"]["run_dir"].as_str().unwrap().contains("shift"),
        "{s}"
    );
    assert!(s["source"]["test_file"]
        .as_str()
        .unwrap()
        .ends_with("test.csv"));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["gap"], r["gap"], "the same losses on the same data");
    let report = std::fs::read_to_string(m.join("report.md")).unwrap();
    assert!(
        report.contains("funnel measure") && report.contains("test.csv"),
        "{report}"
    );

    // shifted data: other numbers, same shape
    let mut shifted = String::from("a,b,c,label\n");
    for line in labelled_csv(160, 2000).lines().skip(1) {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        shifted.push_str(&format!(
            "{},{},{},{}\n",
            cells[0] + 2.0,
            cells[1],
            cells[2],
            cells[3]
        ));
    }
    std::fs::write(dir.path().join("shifted.csv"), shifted).unwrap();
    let o = funnel(&[
        "measure",
        run.to_str().unwrap(),
        "--test",
        dir.path().join("shifted.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let measured = runs(&out, "shift-measure");
    assert_eq!(measured.len(), 2);
    let (a, b) = (layer_values(&measured[0]), layer_values(&measured[1]));
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);

    // bad inputs: exit 2, the file and line named, nothing written
    let before = runs(&out, "shift-measure").len();
    let bad = |name: &str, body: &str, needles: &[&str], extra: &[&str]| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let mut args = vec![
            "measure",
            run.to_str().unwrap(),
            "--test",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = funnel(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        for n in needles {
            assert!(err.contains(n), "expected `{n}` in: {err}");
        }
    };
    bad(
        "cols.csv",
        "a,b,label\n1,2,4\n",
        &["cols.csv:1", "same columns"],
        &[],
    );
    bad("nohdr.csv", "1,2,3,4\n", &["nohdr.csv:1"], &[]);
    bad(
        "label.csv",
        "a,b,c,label\n1,2,3,4\n1,2,3,5\n",
        &["label.csv:3", "`5`"],
        &[],
    );
    bad(
        "cell.csv",
        "a,b,c,label\n1,x,3,4\n",
        &["cell.csv:2", "`x`"],
        &[],
    );
    bad(
        "ragged.csv",
        "a,b,c,label\n1,2,3,4\n1,2,4\n",
        &["ragged.csv:3"],
        &[],
    );
    bad(
        "one.csv",
        "a,b,c,label\n1,2,3,4\n",
        &["one.csv", "class 0", "only 1 example"],
        &[],
    );
    bad(
        "lbl.csv",
        "a,b,c,label\n1,2,3,4\n",
        &["--label"],
        &["--label", "0"],
    );
    assert_eq!(runs(&out, "shift-measure").len(), before, "nothing written");

    // the run's data file changed since the run: refused, not silently re-split
    std::fs::write(dir.path().join("train.csv"), labelled_csv(250, 0)).unwrap();
    let o = funnel(&[
        "measure",
        run.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("changed since"),
        "{}",
        text(&o)
    );
}

#[test]
fn measure_refuses_what_is_not_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.csv");
    std::fs::write(&t, "1,2,0\n").unwrap();
    let o = funnel(&[
        "measure",
        dir.path().to_str().unwrap(),
        "--test",
        t.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a funnel run folder"));
    // a config but no model
    write_config(dir.path(), "config.toml", TINY);
    let o = funnel(&[
        "measure",
        dir.path().to_str().unwrap(),
        "--test",
        t.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a funnel run folder") && err.contains("model.bpk"),
        "{err}"
    );
}

#[test]
fn measure_a_run_on_synthetic_data_with_a_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "tiny.toml",
        &TINY.replace("[metrics]", "[metrics]\nstochastic_layers = \"off\""),
    );
    let out = dir.path().join("out");
    let o = funnel(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    // label first, four features after it
    let mut csv = String::from("y,f1,f2,f3,f4\n");
    for i in 0..200 {
        let y = i % 2;
        let s = if y == 1 { 1.0 } else { -1.0 };
        let f = |k: usize| s + ((i * (5 + k)) % 17) as f64 / 8.0 - 1.0;
        csv.push_str(&format!("{y},{},{},{},{}\n", f(0), f(1), f(2), f(3)));
    }
    let t = dir.path().join("prod.csv");
    std::fs::write(&t, &csv).unwrap();
    let args = |label: &'static str| {
        vec![
            "measure".to_string(),
            run.to_str().unwrap().to_string(),
            "--test".into(),
            t.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--label".into(),
            label.into(),
        ]
    };
    let run_with = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        funnel(&a)
    };
    let o = run_with(args("y"));
    assert!(o.status.success(), "{}", text(&o));
    let o = run_with(args("0"));
    assert!(o.status.success(), "{}", text(&o));
    let measured = runs(&out, "tiny-measure");
    assert_eq!(measured.len(), 2);
    assert_eq!(layer_values(&measured[0]), layer_values(&measured[1]));
    assert_eq!(layer_values(&measured[0]).len(), 4);
    // by default the label is the last column: here a feature, with values outside the classes
    let mut a = args("");
    a.truncate(6); // no --label
    let o = run_with(a);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prod.csv:2"),
        "{}",
        text(&o)
    );
    // a wrong number of columns
    std::fs::write(&t, "1,2,3,0\n4,5,6,1\n").unwrap();
    let o = run_with(args("-1"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prod.csv:1"),
        "{}",
        text(&o)
    );
}
