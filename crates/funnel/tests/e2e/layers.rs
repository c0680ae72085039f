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
