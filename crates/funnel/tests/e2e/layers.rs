//! `funnel layers`: a network's layers from a file measure exactly as `funnel run` measured
//! them, and bad layers files are refused before anything is written.

use crate::common;

use common::*;

/// A deterministic network (no dropout), so that the run's capture is the file's content.
fn exported_run(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = write_config(dir, "tiny.toml", TINY);
    let out = dir.join("out");
    let o = funnel(&[
        "run",
        arg(&cfg),
        "--out",
        arg(&out),
        "--export-layers",
        "--set",
        "model.regularizer={ kind = \"none\" }",
        "--set",
        "metrics.permutations=19",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    runs(&out, "tiny").pop().unwrap()
}

#[test]
fn layers_of_a_runs_export_reproduce_its_layers_csv() {
    let dir = tempfile::tempdir().unwrap();
    let run = exported_run(dir.path());
    let npz = run.join("layers.npz");
    assert!(npz.is_file(), "--export-layers writes layers.npz");
    let out = dir.path().join("again");
    let o = funnel(&["layers", arg(&npz), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("funnel layers · tiny-layers"), "{stdout}");
    let again = runs(&out, "tiny-layers").pop().expect("a results folder");
    for f in ["layers.csv", "summary.json", "report.md", "config.toml"] {
        assert!(again.join(f).is_file(), "{f}");
    }
    // every column of every layer, timings aside: the same estimates, nulls, intervals,
    // resolution, bounds (from the exported Lipschitz constants), names and descriptions
    let (a, b) = (layer_values(&run), layer_values(&again));
    assert_eq!(a.len(), 4, "input, two hidden layers, logits");
    assert_eq!(a, b);
    let report = std::fs::read_to_string(again.join("report.md")).unwrap();
    assert!(
        report.starts_with("# funnel layers `tiny-layers`"),
        "{report}"
    );
    assert!(report.contains("trained elsewhere"), "{report}");
}

#[test]
fn bad_layers_files_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad");
    // not an .npz
    let csv = write_config(dir.path(), "x.npz", "a,b\n1,2\n");
    let o = funnel(&["layers", arg(&csv), "--out", arg(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not an .npz"), "{}", text(&o));
    // too few points per class for the estimators: a run's export measured with a large k
    let run = exported_run(dir.path());
    let o = funnel(&[
        "layers",
        arg(&run.join("layers.npz")),
        "--out",
        arg(&out),
        "--set",
        "metrics.max_points=20",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("class 0") && text(&o).contains("estimators need"),
        "{}",
        text(&o)
    );
    // an unknown setting names its key
    let o = funnel(&[
        "layers",
        arg(&run.join("layers.npz")),
        "--out",
        arg(&out),
        "--set",
        "metrics.kk=3",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("kk"), "{}", text(&o));
    assert!(!out.exists(), "nothing written for bad input");
}

/// A file as the PyTorch exporter writes it: no activation or role members, splits of unequal
/// size, per-example losses. It measures end to end, says which layers' activations it does
/// not know (kNN KL there, never a Gaussian fit) and what points the estimates used.
#[test]
fn an_exporter_style_file_measures_and_says_what_it_assumed() {
    use funnel::results::layers_npz::{write, FileLayer, LayerFile};
    use funnel_metrics::Points;
    let dir = tempfile::tempdir().unwrap();
    let (n_tr, n_te, d) = (60usize, 150usize, 3usize);
    // deterministic, well-spread points: class y around y·3 in every coordinate
    let cloud = |n: usize, shift: f32| -> (Points, Vec<usize>) {
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let data: Vec<f32> = (0..n * d)
            .map(|k| {
                let (i, j) = (k / d, k % d);
                labels[i] as f32 * 3.0 + ((i * 7 + j * 13) % 17) as f32 / 17.0 + shift
            })
            .collect();
        (Points::new(data, n, d), labels)
    };
    let (tr, y_tr) = cloud(n_tr, 0.0);
    let (te, y_te) = cloud(n_te, 0.1);
    let layer = |name: &str| FileLayer {
        name: name.into(),
        train: tr.clone(),
        test: te.clone(),
        lipschitz: None,
        lipschitz_local: None,
        lipschitz_cp: None,
        lipschitz_box: None,
        lipschitz_cert: None,
        activation: None,
        role: None,
        regularizer: None,
        masked: false,
    };
    let file = LayerFile {
        layers: vec![layer("features.0"), layer("fc")],
        train_labels: y_tr,
        test_labels: y_te,
        classes: 2,
        train_loss: Some(vec![0.1; n_tr]),
        test_loss: Some(vec![0.4; n_te]),
        train_error: Some(vec![0.0; n_tr]),
        test_error: Some(vec![0.2; n_te]),
        config: None,
    };
    let npz = dir.path().join("torch_layers.npz");
    std::fs::write(&npz, write(&file)).unwrap();
    let out = dir.path().join("out");
    let o = funnel(&[
        "layers",
        arg(&npz),
        "--out",
        arg(&out),
        "--set",
        "metrics.permutations=19",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("activation unknown: not assumed Gaussian"),
        "{stdout}"
    );
    assert!(stdout.contains("the splits differ in size"), "{stdout}");
    assert!(
        stdout.contains("features.0") && stdout.contains(" fc "),
        "{stdout}"
    );
    // the gap from the per-example losses: 0.2 − 0 and 0.4 − 0.1
    assert!(
        stdout.contains("0-1 0.200") && stdout.contains("cross-entropy 0.300"),
        "{stdout}"
    );
    let run = runs(&out, "torch_layers").pop().unwrap();
    let rows = layer_values(&run);
    let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, ["features.0", "fc"]);
    let activations: Vec<&str> = rows.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(activations, ["unknown", "unknown"]);
}
