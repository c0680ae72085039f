//! `funnel report`: figures and `report.md` regenerated from a finished run's saved results
//! equal the originals; a sweep folder's `summary.csv` gives the sweep figures.

use crate::common;

use std::path::Path;

use common::*;

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a readable PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).expect("a decodable PNG");
    assert!(reader.info().width >= 500 && reader.info().height >= 400);
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.trim_start().starts_with("<svg"), "{}", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
    assert!(text.contains("<text"), "{} has no text", path.display());
}

#[test]
fn report_regenerates_a_runs_report_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    // `beta` adds I(X;T) to every layer: the information plane is drawn too
    let (out, o) = run_tiny(tmp.path(), &["metrics.beta=0.5"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let names = ["layers", "information_plane"];
    let mut original = Vec::new();
    for n in names {
        for ext in ["png", "svg"] {
            let p = run.join("plots").join(format!("{n}.{ext}"));
            original.push((p.clone(), std::fs::read(&p).unwrap()));
        }
        assert_png(&run.join(format!("plots/{n}.png")));
        assert_svg(&run.join(format!("plots/{n}.svg")));
    }
    let md = std::fs::read(run.join("report.md")).unwrap();
    assert!(String::from_utf8_lossy(&md).contains("](plots/layers.svg)"));
    assert!(String::from_utf8_lossy(&md).contains("](plots/information_plane.svg)"));

    std::fs::remove_file(run.join("report.md")).unwrap();
    std::fs::remove_dir_all(run.join("plots")).unwrap();
    let o = funnel(&["report", arg(run)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(run.join("report.md")).unwrap(),
        md,
        "regenerated report.md differs"
    );
    for (p, bytes) in original {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{} differs", p.display());
    }
}

#[test]
fn report_draws_a_sweeps_figures_from_summary_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("cell,status,seed,depth,width,model.activation,gap_zero_one,gap_ce_clipped,kl_bound_min,w1_bound_min,funnel_layer\n");
    let mut i = 0;
    for act in ["relu", "tanh"] {
        for width in [16, 64] {
            for depth in 1..=4 {
                for seed in 0..3 {
                    let f = (depth * width) as f64;
                    let s = seed as f64;
                    csv.push_str(&format!(
                        "c{i},ok,{seed},{depth},{width},{act},{},{},{},{},{}\n",
                        0.02 + 0.01 * s,
                        0.05 + 0.01 * s,
                        0.1 + 0.002 * f,
                        0.5 + 0.3 * f + s,
                        (depth - 1).max(0) + seed % 2
                    ));
                    i += 1;
                }
            }
        }
    }
    csv.push_str("bad,failed,0,2,16,relu,,,,,\n");
    std::fs::write(tmp.path().join("summary.csv"), csv).unwrap();
    let o = funnel(&["report", arg(tmp.path())]);
    assert!(o.status.success(), "{}", text(&o));
    for n in ["bounds_vs_depth", "funnel_vs_depth"] {
        assert_png(&tmp.path().join(format!("plots/{n}.png")));
        assert_svg(&tmp.path().join(format!("plots/{n}.svg")));
    }
    // rankings.csv is rewritten where the folder has one, and not added where it has none
    let rankings = tmp.path().join("rankings.csv");
    assert!(!rankings.exists());
    std::fs::write(&rankings, "measure,gap,tau_b,cells\n").unwrap();
    let o = funnel(&["report", arg(tmp.path())]);
    assert!(o.status.success(), "{}", text(&o));
    let r = std::fs::read_to_string(&rankings).unwrap();
    assert!(
        r.starts_with("measure,gap,kind,tau_b,tau_lo,tau_hi,resamples,configurations,cells,"),
        "{r}"
    );
    // every tanh cell repeats a relu cell's results (the values above ignore the activation):
    // 24 duplicates dropped, 8 configurations of 3 seeds left, none to vary the activation in;
    // the gap depends on the seed alone, so τ over the cells is 0 and the means' τ undefined
    for line in [
        "kl_bound_min,gap_zero_one,overall,0,",
        ",2000,8,24,24,,\n",
        "kl_bound_min,gap_zero_one,mean_gap,NaN,NaN,NaN,0,8,24,24,,\n",
        "kl_bound_min,gap_zero_one,granulated:model.activation,NaN,NaN,NaN,,8,24,24,0,8\n",
    ] {
        assert!(r.contains(line), "{line}\n{r}");
    }
}

#[test]
fn report_refuses_a_folder_without_results() {
    let tmp = tempfile::tempdir().unwrap();
    let o = funnel(&["report", arg(tmp.path())]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("neither a funnel run folder"));
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The committed studies under `experiments/` are reproducible from their recorded results:
/// `funnel report` on a copy of each rewrites its figures (and a sweep's rankings.csv, a Gibbs
/// run's report.md and CSVs) byte for byte.
#[test]
fn report_reproduces_every_committed_study_byte_for_byte() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut studies = Vec::new();
    let mut stack = vec![experiments.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "plots") {
                stack.push(p);
            }
        }
        if d.join("summary.csv").is_file() || d.join("summary.json").is_file() {
            studies.push(d);
        }
    }
    studies.sort();
    assert!(studies.len() >= 8, "the committed studies: {studies:?}");
    let scratch = tempfile::tempdir().unwrap();
    for (i, study) in studies.iter().enumerate() {
        let copy = scratch.path().join(format!("s{i}"));
        let before = files(study);
        for (rel, bytes) in &before {
            std::fs::create_dir_all(copy.join(rel).parent().unwrap()).unwrap();
            std::fs::write(copy.join(rel), bytes).unwrap();
        }
        let o = funnel(&["report", arg(&copy)]);
        assert!(o.status.success(), "{}: {}", study.display(), text(&o));
        let after = files(&copy);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{}: report wrote files the study does not have",
            study.display()
        );
        for (rel, bytes) in &before {
            assert!(
                &after[rel] == bytes,
                "{}: {} differs after `funnel report`",
                study.display(),
                rel.display()
            );
        }
    }
}
