//! Helpers shared by the end-to-end tests of the `funnel` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const TINY: &str = r#"
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

pub fn funnel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .output()
        .expect("the funnel binary runs")
}

pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The run folders under `out/<name>/`.
pub fn runs(out: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join(name))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A JSON file (e.g. a run's `summary.json`), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A path as the `&str` a command line takes.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `layers.csv` of a run without its timing columns.
pub fn layer_values(run: &Path) -> Vec<Vec<String>> {
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

/// Runs TINY (written to `dir/tiny.toml`) into `dir/out` with these `--set` overrides; returns
/// the output folder and the command's output.
pub fn run_tiny(dir: &Path, sets: &[&str]) -> (PathBuf, Output) {
    let cfg = write_config(dir, "tiny.toml", TINY);
    let out = dir.join("out");
    let mut args = vec!["run", arg(&cfg), "--out", arg(&out)];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = funnel(&args);
    (out, o)
}
