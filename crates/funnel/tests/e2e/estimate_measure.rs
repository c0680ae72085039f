//! End to end through the `funnel` binary: `estimate` (point files) and `measure` (saved
//! models against other data).

use crate::common;
use common::*;

use std::path::Path;
use std::process::Output;

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
    let mut args = vec!["estimate", "--p", arg(p), "--q", arg(q), "--json"];
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
        arg(&p),
        "--q",
        arg(&q),
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
    let mut args = vec!["estimate", "--p", arg(p), "--q", arg(q)];
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

    // integer and float16 arrays are read (converted); a complex one is not
    let complex = write("c.npy", &npy("<c8", false, "(2, 1)", &[0u8; 16]));
    assert_bad_estimate(&complex, &good, &[], &["c.npy", "`<c8`", "not supported"]);
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
    // any shape is one point per leading index, flattened: 2 points of 4 values here
    assert_bad_estimate(&cube, &good, &[], &["cube.npy have 4"]);
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
    // a binary file that is no numpy array
    let png = write("x.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe\xfd");
    assert_bad_estimate(&png, &good, &[], &["x.png", "not a CSV, .npy or .npz file"]);
    // labels of the wrong length
    let labels = write("labels.csv", b"0\n1\n");
    assert_bad_estimate(
        &good,
        &good,
        &["--p-labels", arg(&labels), "--q-labels", arg(&labels)],
        &["labels.csv", "2 labels for the 40 points"],
    );
}

/// `.npz` arrays chosen by name, float16 and integer arrays, and labels: the class-conditional
/// estimate of two clouds whose classes are shifted apart equally has W1 = the shift.
#[test]
fn estimate_reads_npz_float16_integers_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    // P: class 0 at 0..40, class 1 at 1000..1040 (integers); Q: the same shifted by 1 (float16)
    let p: Vec<i64> = (0..40).chain(1000..1040).collect();
    let q: Vec<f32> = p.iter().map(|&x| x as f32 + 1.0).collect();
    let y: Vec<i64> = (0..80).map(|i| i64::from(i >= 40)).collect();
    let i64s = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f16s: Vec<u8> = q
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    let arrays = [
        ("p.npy", npy("<i8", false, "(80, 1)", &i64s(&p))),
        ("q.npy", npy("<f2", false, "(80, 1)", &f16s)),
        ("y.npy", npy("<i8", false, "(80,)", &i64s(&y))),
    ];
    let npz = dir.path().join("clouds.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&npz).unwrap());
    for (name, bytes) in &arrays {
        zip.start_file(*name, zip::write::FileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, bytes).unwrap();
    }
    zip.finish().unwrap();
    let at = |name: &str| format!("{}:{name}", npz.display());
    let (pa, qa, ya) = (at("p"), at("q"), at("y"));
    let run = |extra: &[&str]| {
        let mut args = vec!["estimate", "--p", &pa, "--q", &qa, "--json", "--kl", "knn"];
        args.extend_from_slice(extra);
        let o = funnel(&args);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v
    };
    // without labels: one cloud each, W1 = 1 exactly (every point moves by 1)
    let plain = run(&[]);
    assert!(
        (plain["w1"]["value"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{plain}"
    );
    // with labels: class-conditional, the same W1 = 1 and no label term (equal class shares)
    let labelled = run(&["--p-labels", &ya, "--q-labels", &ya]);
    assert!(
        (labelled["w1"]["value"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{labelled}"
    );
    assert_eq!(labelled["w1"]["points"]["p"], 80);
    // an array name that is not there lists the ones that are
    let o = funnel(&["estimate", "--p", &at("nope"), "--q", &qa]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no array `nope`") && text(&o).contains("`q`"),
        "{}",
        text(&o)
    );
    // a whole .npz with several arrays must name one
    let o = funnel(&["estimate", "--p", arg(&npz), "--q", &qa]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("name one"), "{}", text(&o));
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
        arg(&q),
        "--q",
        arg(&q),
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

#[test]
fn measure_against_the_runs_own_test_set_reproduces_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), labelled_csv(240, 0)).unwrap();
    std::fs::write(dir.path().join("test.csv"), labelled_csv(160, 1000)).unwrap();
    let cfg = write_config(dir.path(), "c.toml", CSV_RUN);
    let out = dir.path().join("out");
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "shift")[0];
    assert!(run.join("model.bpk").is_file());

    let test = dir.path().join("test.csv");
    let o = funnel(&[
        "measure",
        arg(run),
        "--test",
        arg(&test),
        "--out",
        arg(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let measured = runs(&out, "shift-measure");
    assert_eq!(measured.len(), 1, "{measured:?}");
    let m = &measured[0];
    // same model, same training split and standardization, same seeds: the same numbers,
    // dropout masks included
    assert_eq!(layer_values(run), layer_values(m));
    // the shared tail draws the figures into the measure folder too
    assert!(m.join("plots/layers.png").is_file() && m.join("plots/layers.svg").is_file());
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
        arg(run),
        "--test",
        dir.path().join("shifted.csv").to_str().unwrap(),
        "--out",
        arg(&out),
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
        let mut args = vec!["measure", arg(run), "--test", arg(&p), "--out", arg(&out)];
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
        arg(run),
        "--test",
        arg(&test),
        "--out",
        arg(&out),
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
    let o = funnel(&["measure", arg(dir.path()), "--test", arg(&t)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a funnel run folder"));
    // a config but no model
    write_config(dir.path(), "config.toml", TINY);
    let o = funnel(&["measure", arg(dir.path()), "--test", arg(&t)]);
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
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
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
            arg(run).to_string(),
            "--test".into(),
            arg(&t).into(),
            "--out".into(),
            arg(&out).into(),
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
