//! End to end through the `funnel` binary: `run`, its input checks and `selftest`.

use crate::common;
use common::*;

use std::path::Path;
use std::process::Command;

#[test]
fn a_run_writes_every_file_with_the_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
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
        // the bounds follow from the simultaneous upper end: sqrt(D^up/2) (no bound, never a
        // clipped 0, when D^up ≤ 0) and ρ·W^up + c·TV; the upper end is one-sided at
        // 1 − α/layers, so at least the two-sided interval's (1 − α/2)
        assert!(v("kl_upper") >= v("kl_hi") - 1e-12 && v("w1_upper") >= v("w1_hi") - 1e-12);
        if v("kl_upper") > 0.0 {
            assert!((v("kl_bound") - (v("kl_upper") / 2.0).sqrt()).abs() < 1e-9);
        } else {
            assert!(v("kl_bound").is_nan(), "row {l}: {r:?}");
        }
        assert!(v("kl_bound") != 0.0 && v("w1_bound") != 0.0);
        let want = v("lipschitz") * v("w1_upper") + 5.0 * v("w1_label_tv");
        assert!((v("w1_bound") - want).abs() < 1e-9 * want.max(1.0));
        // the null, p-value and excess of every divergence
        for d in ["kl", "w1"] {
            let p = v(&format!("{d}_p"));
            assert!(p > 0.0 && p <= 1.0, "row {l}: {d}_p {p}");
            let excess = v(&format!("{d}_excess"));
            assert!((excess - (v(d) - v(&format!("{d}_null")))).abs() < 1e-9);
            assert!(
                v(&format!("{d}_excess_lo")) <= excess && excess <= v(&format!("{d}_excess_hi"))
            );
            assert_eq!(
                r[col(&format!("{d}_permutations"))]
                    .parse::<usize>()
                    .unwrap(),
                99
            );
        }
        assert_eq!(&r[col("kl_estimator")], "knn(k=5)");
        assert!(r[col("kl_points_train")].parse::<usize>().unwrap() > 0);
    }

    // summary.json
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "ok");
    assert_eq!(s["seed"], 5);
    assert_eq!(s["backend"], "flex");
    assert!(s["gap"]["zero_one"].is_number() && s["gap"]["cross_entropy"].is_number());
    // the headline layers are resolved layers, or none; a headline bound is never 0
    assert!(s["funnel_layer"].as_u64().is_none_or(|l| l <= 3));
    for (key, layer) in [
        (&s["bounds"]["kl"]["zero_one"], &s["bounds"]["kl"]["layer"]),
        (
            &s["bounds"]["w1"]["cross_entropy_clipped"],
            &s["bounds"]["w1"]["layer"],
        ),
    ] {
        match layer.as_u64() {
            Some(l) => {
                assert!(key.as_f64().unwrap() > 0.0);
                assert!(s["layers"][l as usize]["kl"]["resolved"].is_boolean());
            }
            None => assert!(key.is_null(), "{key}"),
        }
    }
    assert!(s["timings"]["total_s"].as_f64().unwrap() > 0.0);
    assert_eq!(s["funnel_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["layers"].as_array().unwrap().len(), 4);
    // the funnel is the argmin of the W1 bound over the resolved layers (none: no funnel)
    let min_w1 = rows
        .iter()
        .map(|r| {
            if &r[col("w1_resolved")] == "true" {
                r[col("w1_bound")].parse::<f64>().unwrap()
            } else {
                f64::NAN
            }
        })
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i as u64);
    assert_eq!(
        s["funnel_layer"].as_u64(),
        min_w1,
        "funnel = argmin of the W1 bound over resolved layers"
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
        let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let folders = runs(&out, "tiny");
    assert_eq!(folders.len(), 2);
    assert_eq!(layer_values(&folders[0]), layer_values(&folders[1]));
    // summary.json: bit-identical apart from the run id, the creation time and timings
    fn untimed(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    !(k.contains("seconds") || k == "timings" || k == "run_id" || k == "created")
                });
                m.values_mut().for_each(untimed);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(untimed),
            _ => {}
        }
    }
    let summary = |p: &Path| -> (serde_json::Value, usize) {
        let text = std::fs::read_to_string(p.join("summary.json")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        untimed(&mut v);
        let numbers = text.matches(|c: char| c.is_ascii_digit()).count();
        (v, numbers)
    };
    let (a, b) = (summary(&folders[0]), summary(&folders[1]));
    assert!(a.1 > 200, "summary.json holds the numbers");
    // serde_json prints f64 with the shortest exact representation: equal text is equal bits
    assert_eq!(a.0.to_string(), b.0.to_string());
    // and the training curve, timings aside
    let curve = |p: &Path| -> Vec<String> {
        let mut rdr = csv::Reader::from_path(p.join("training.csv")).unwrap();
        let h = rdr.headers().unwrap().clone();
        rdr.records()
            .map(|r| {
                let r = r.unwrap();
                h.iter()
                    .zip(r.iter())
                    .filter(|(h, _)| !h.contains("seconds"))
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    assert_eq!(curve(&folders[0]), curve(&folders[1]));
}

#[test]
fn overrides_apply_and_are_frozen_into_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (out, o) = run_tiny(
        dir.path(),
        &[
            "model.widths=[5]",
            "metrics.w1=sliced",
            "metrics.kl=gaussian",
        ],
    );
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
    let mut args = vec!["run", arg(&cfg), "--out", arg(&out)];
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
            "bootstrap = 4\npermutations = 9\nw1 = \"sinkhorn\"\nmc_draws = 2",
        );
    let cfg = write_config(dir.path(), "noisy.toml", &noisy);
    let out = dir.path().join("out");
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
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
fn the_quick_selftest_measures_coverage_per_case() {
    let o = funnel(&[
        "selftest",
        "--quick",
        "--reps",
        "6",
        "--bootstrap",
        "6",
        "--permutations",
        "9",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("ERROR"), "{out}");
    for case in [
        "gaussian pair",
        "small shift",
        "tanh 2→8, 1:10 sizes",
        "dropout-like",
        "shifted gaussians",
        "reach ≥ 90% coverage",
    ] {
        assert!(out.contains(case), "missing {case}: {out}");
    }
    // every case is counted once, with its k of R and its interval
    assert!(out.contains("/6 ") && out.contains("[0."), "{out}");
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
    let o = funnel(&["run", arg(&frozen), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(runs(&out, "tiny").len(), 2);
}

#[test]
fn a_closed_stdout_does_not_lose_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["run", arg(&cfg), "--out", arg(&out)])
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
    let o = funnel(&["run", arg(&cfg_path), "--out", arg(&out)]);
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
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "failed");
    assert!(s["reason"].as_str().unwrap().contains("diverged"), "{s}");
    assert!(run.join("training.csv").is_file() && run.join("report.md").is_file());
}
