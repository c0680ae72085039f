//! End-to-end tests of `funnel sweep` and `funnel merge` on tiny studies (a few seconds each).

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// A tiny base config and a study of 2 depths × 2 seeds (4 cells) next to it.
fn study(dir: &Path, seeds: &str, extra_axes: &str) -> PathBuf {
    write_config(dir, "base.toml", TINY);
    write_config(
        dir,
        "study.toml",
        &format!(
            "name = \"st\"\nbase = \"base.toml\"\nseeds = {seeds}\n[axes]\ndepth = [1, 2]\nwidth = [6]\n{extra_axes}"
        ),
    )
}

/// Cell id → its run folders (finished and staging).
fn cell_runs(sweep: &Path) -> Vec<(String, Vec<String>)> {
    let mut cells: Vec<(String, Vec<String>)> = std::fs::read_dir(sweep.join("cells"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let mut runs: Vec<String> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            runs.sort();
            (p.file_name().unwrap().to_string_lossy().to_string(), runs)
        })
        .collect();
    cells.sort();
    cells
}

fn run_dir(sweep: &Path, cell: &str) -> PathBuf {
    let d = sweep.join("cells").join(cell);
    let runs: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    assert_eq!(runs.len(), 1, "{cell}: {runs:?}");
    runs[0].clone()
}

/// summary.csv without the timing columns.
fn summary_without_timings(sweep: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(sweep.join("summary.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("_s"))
        .collect();
    let mut rows = vec![keep.iter().map(|&i| header[i].clone()).collect()];
    for rec in r.records() {
        let rec = rec.unwrap();
        rows.push(keep.iter().map(|&i| rec[i].to_string()).collect());
    }
    rows
}

#[test]
fn a_sweep_writes_one_row_per_cell_and_resumes_after_an_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(dir.path(), "[1, 2]", "");
    let out = dir.path().join("out");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let sweep = out.join("st");
    for f in [
        "study.toml",
        "base.toml",
        "sweep.json",
        "summary.csv",
        "aggregate.csv",
        "rankings.csv",
        "plots/bounds_vs_depth.png",
        "plots/bounds_vs_depth.svg",
        "plots/funnel_vs_depth.png",
    ] {
        assert!(sweep.join(f).is_file(), "{f}");
    }
    let ids = [
        "c0000-d1-w6-s1",
        "c0001-d1-w6-s2",
        "c0002-d2-w6-s1",
        "c0003-d2-w6-s2",
    ];
    let cells = cell_runs(&sweep);
    assert_eq!(cells.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ids);
    let summary = std::fs::read_to_string(sweep.join("summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    for col in [
        "cell,status,reason,seed,depth,width,gap_zero_one,gap_cross_entropy,gap_ce_clipped,kl_bound_min,kl_bound_min_layer,w1_bound_min,funnel_layer,funnel_layer_local,w1_min_layer,kl_last,kl_bound_last,w1_bound_last,eta_product_last,kl_contracted_bound_last,w1_bound_local_last,kl_bound_l0,kl_bound_l1,kl_bound_l2,w1_bound_l0",
        ",eta_product_l0,eta_product_l1,eta_product_l2,",
        ",hidden_layers,parameters,train_zero_one,test_zero_one,train_s,total_s",
        ",lipschitz_cp_l0,",
        ",lipschitz_cert_l0,",
        ",w1_bound_cert_l0,",
        ",w1_bound_cert_min,funnel_layer_cert,funnel_layer_cert_any,funnel_layer_debiased,",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(summary.lines().count(), 5);
    // depth 1 has two layers (input, logits): its l2 columns are NaN
    assert!(summary.lines().nth(1).unwrap().contains("NaN"));
    let agg = std::fs::read_to_string(sweep.join("aggregate.csv")).unwrap();
    assert_eq!(agg.lines().count(), 3, "{agg}");
    assert!(agg
        .lines()
        .next()
        .unwrap()
        .contains("kl_bound_min_mean,kl_bound_min_std"));
    // no bound column holds a clipped 0 (a bound is positive or NaN), and the headline minima
    // are over resolved layers only
    let mut rdr = csv::Reader::from_reader(summary.as_bytes());
    let head = rdr.headers().unwrap().clone();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        for (h, v) in head.iter().zip(rec.iter()) {
            if h.contains("bound") && !h.ends_with("_layer") {
                let x: f64 = v.parse().unwrap();
                assert!(x.is_nan() || x > 0.0, "{h} = {v}");
            }
        }
        let get = |name: &str| -> f64 {
            rec[head.iter().position(|h| h == name).unwrap()]
                .parse()
                .unwrap()
        };
        let kl_min = get("kl_bound_min");
        if kl_min.is_finite() {
            let l = get("kl_bound_min_layer") as usize;
            assert_eq!(get(&format!("kl_resolved_l{l}")), 1.0);
        }
    }
    assert!(agg
        .lines()
        .next()
        .unwrap()
        .contains("gap_zero_one_lo,gap_zero_one_hi"));
    assert!(agg.lines().next().unwrap().contains("kl_bound_seeds_min"));
    let rank = std::fs::read_to_string(sweep.join("rankings.csv")).unwrap();
    assert!(
        rank.starts_with("measure,gap,kind,tau_b,tau_lo,tau_hi,resamples,configurations,cells,duplicates,combinations,combinations_total\n"),
        "{rank}"
    );
    for kind in ["overall", "mean_gap", "granulated:depth", "granulated_mean"] {
        assert!(
            rank.contains(&format!("kl_bound_min,gap_zero_one,{kind},")),
            "{rank}"
        );
    }

    // mark every finished cell, then simulate an interruption: one cell gone, one left as a
    // staging folder of a killed run
    for id in ids {
        std::fs::write(run_dir(&sweep, id).join("marker"), "").unwrap();
    }
    std::fs::remove_dir_all(sweep.join("cells").join(ids[1])).unwrap();
    let killed = run_dir(&sweep, ids[2]);
    let partial = killed.with_file_name(".20990101-000000-s1.partial");
    std::fs::rename(&killed, &partial).unwrap();
    std::fs::remove_file(partial.join("summary.json")).unwrap();

    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 done, 2 to run"), "{}", text(&o));
    // each cell exactly once, no staging folder left; only the interrupted ones ran again
    for (id, runs) in cell_runs(&sweep) {
        assert_eq!(runs.len(), 1, "{id}: {runs:?}");
        assert!(!runs[0].starts_with('.'), "{id}: {runs:?}");
    }
    for (id, kept) in ids.iter().zip([true, false, false, true]) {
        assert_eq!(run_dir(&sweep, id).join("marker").exists(), kept, "{id}");
    }
    assert_eq!(
        std::fs::read_to_string(sweep.join("summary.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );

    // a third run has nothing to do
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4 done, 0 to run"), "{}", text(&o));
}

#[test]
fn a_changed_study_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(dir.path(), "[1]", "");
    let out = dir.path().join("out");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let sweep = out.join("st");
    let before = std::fs::read_to_string(sweep.join("sweep.json")).unwrap();
    for id in ["c0000-d1-w6-s1", "c0001-d2-w6-s1"] {
        std::fs::write(run_dir(&sweep, id).join("marker"), "").unwrap();
    }
    // a second seed: different cells
    let st = study(dir.path(), "[1, 2]", "");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("different study") && text(&o).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(sweep.join("sweep.json")).unwrap(),
        before
    );
    assert_eq!(cell_runs(&sweep).len(), 2);
    // --force: the cell whose config is unchanged is kept, the others run
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run_dir(&sweep, "c0000-d1-w6-s1").join("marker").exists());
    assert_eq!(
        std::fs::read_to_string(sweep.join("summary.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );
}

#[test]
fn a_bad_study_exits_2_naming_the_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (axes, needle) in [
        (
            "\"model.activation\" = [\"relu\", \"nonsense\"]\n",
            "model.activation",
        ),
        ("\"train.lr\" = [0.01, 0]\n", "train.lr"),
        ("\"model.bogus\" = [1]\n", "bogus"),
    ] {
        let st = study(dir.path(), "[1]", axes);
        let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(needle), "{needle}: {}", text(&o));
        assert!(!out.exists());
    }
    write_config(
        dir.path(),
        "study.toml",
        "name = \"st\"\nbase = \"base.toml\"\nseeds = [1]\n[axes]\ndepth = [2]\n",
    );
    let o = funnel(&[
        "sweep",
        arg(&dir.path().join("study.toml")),
        "--out",
        arg(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("width"), "{}", text(&o));
    let st = study(dir.path(), "[1]", "");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--shard", "2/2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out.exists());
}

#[test]
fn a_failed_cell_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(
        dir.path(),
        "[1]",
        "\"train.lr\" = [0.01, 1e30]\n\"train.algorithm\" = [\"sgd\"]\n\"model.activation\" = [\"relu\"]\n",
    );
    let out = dir.path().join("out");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let mut r = csv::Reader::from_path(out.join("st/summary.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        // sgd at lr 1e30 diverges in the relu network (depth 2), not in the linear one
        let huge = &row[col("train.lr")] == "1e30" && &row[col("depth")] == "2";
        assert_eq!(
            &row[col("status")],
            if huge { "failed" } else { "ok" },
            "{row:?}"
        );
        if huge {
            assert!(row[col("reason")].contains("diverged"), "{row:?}");
        }
    }
    // a failed cell is complete: a rerun does not repeat it
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("4 done, 0 to run"), "{}", text(&o));
}

#[test]
fn merged_shards_equal_the_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(dir.path(), "[1, 2]", "\"model.activation\" = [\"tanh\"]\n");
    let full = dir.path().join("full");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&full), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let parts = dir.path().join("parts");
    for i in 0..2 {
        let shard = format!("{i}/2");
        let o = funnel(&["sweep", arg(&st), "--out", arg(&parts), "--shard", &shard]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("2 in this shard"), "{}", text(&o));
    }
    let merged = dir.path().join("merged");
    let o = funnel(&[
        "merge",
        arg(&merged),
        arg(&parts.join("st-shard-0-of-2")),
        arg(&parts.join("st-shard-1-of-2")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        summary_without_timings(&merged),
        summary_without_timings(&full.join("st"))
    );
    assert_eq!(
        std::fs::read_to_string(merged.join("rankings.csv")).unwrap(),
        std::fs::read_to_string(full.join("st/rankings.csv")).unwrap()
    );
    assert_eq!(cell_runs(&merged).len(), 4);
    // a folder of another study is refused
    let other = study(dir.path(), "[7]", "");
    let o = funnel(&["sweep", arg(&other), "--out", arg(&dir.path().join("o"))]);
    assert!(o.status.success(), "{}", text(&o));
    let o = funnel(&[
        "merge",
        arg(&dir.path().join("m2")),
        arg(&parts.join("st-shard-0-of-2")),
        arg(&dir.path().join("o/st")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("different study"), "{}", text(&o));
}

#[cfg(unix)]
#[test]
fn kill_9_of_the_sweep_loses_only_the_cells_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "base.toml",
        &TINY.replace("epochs = 4", "epochs = 40"),
    );
    let st = write_config(
        dir.path(),
        "study.toml",
        "name = \"st\"\nbase = \"base.toml\"\nseeds = [1, 2, 3]\n[axes]\ndepth = [2, 3]\nwidth = [6]\n",
    );
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill as soon as the first cell is finished (or after a while): cells are in flight
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 20 {
        let done = std::fs::read_dir(out.join("st/cells"))
            .map(|rd| {
                rd.filter(|e| {
                    let p = e.as_ref().unwrap().path();
                    std::fs::read_dir(p)
                        .unwrap()
                        .any(|r| r.unwrap().path().join("summary.json").is_file())
                })
                .count()
            })
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // the orphaned cells notice within 100 ms and exit
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before: Vec<(String, Vec<String>)> = cell_runs(&out.join("st"));
    let finished = before
        .iter()
        .filter(|(_, runs)| runs.iter().any(|r| !r.starts_with('.')))
        .count();
    assert!(finished < 6, "the sweep was killed too late: {before:?}");
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{finished} done, {} to run", 6 - finished)),
        "{}",
        text(&o)
    );
    let after = cell_runs(&out.join("st"));
    assert_eq!(after.len(), 6);
    for (id, runs) in &after {
        assert_eq!(runs.len(), 1, "{id}: {runs:?}");
        assert!(!runs[0].starts_with('.'), "{id}: {runs:?}");
        // a cell finished before the kill is untouched
        if let Some((_, old)) = before.iter().find(|(b, _)| b == id) {
            if old.iter().any(|r| !r.starts_with('.')) {
                assert_eq!(old, runs, "{id}");
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(out.join("st/summary.csv"))
            .unwrap()
            .lines()
            .count(),
        7
    );
}
