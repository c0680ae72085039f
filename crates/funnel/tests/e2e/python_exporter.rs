//! The PyTorch exporter (`python/funnel_export.py`): its tests run with whatever `python3` is
//! on the PATH — the standard-library parts always (file layout, `.npy`/`.npz` bytes,
//! stratified subsampling, names), the torch parts when torch is installed (they skip with a
//! message otherwise); and a file its stdlib writer made is read by `funnel layers`' reader.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_exporters_own_tests_pass() {
    let Ok(o) = Command::new("python3")
        .args(["-m", "unittest", "-v", "python/test_funnel_export.py"])
        .current_dir(repo())
        .output()
    else {
        eprintln!("python3 is not installed: the exporter's tests are skipped");
        return;
    };
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "python/test_funnel_export.py failed:\n{log}"
    );
    assert!(log.contains("OK"), "{log}");
    if log.contains("torch is not installed") {
        eprintln!("torch is not installed: the exporter's torch tests were skipped");
    }
}

#[test]
fn a_file_of_the_exporters_writer_is_a_layers_file() {
    let file = repo().join("fuzz/seeds/npz/python_export.npz");
    let layers = funnel::results::layers_npz::read(&file).unwrap();
    let names: Vec<&str> = layers.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["input", "fc1"]);
    assert_eq!(
        (layers.layers[0].train.n, layers.layers[0].train.d),
        (12, 3)
    );
    // the exporter wrote 1.4142 as float64
    assert_eq!(
        layers.layers[1].lipschitz.map(|l| (l * 1e4).round()),
        Some(14142.0)
    );
    assert_eq!(layers.train_labels.len(), 12);
    assert_eq!(layers.classes, 2);
    assert_eq!(layers.train_loss.as_deref(), Some(&[0.5; 12][..]));
}
