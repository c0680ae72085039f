//! Interrupts: Ctrl-C (SIGINT) of a run or a sweep leaves a consistent results folder and exits
//! 130; SIGKILL of a sweep at several points, each followed by a resume, ends with every cell
//! completed exactly once and every file parseable. (Unix only: signals.)

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A study `st` of TINY cells trained for `epochs` epochs, with these seeds and depth axis (width
/// 6), in `dir`; returns the study file.
fn study(dir: &Path, epochs: usize, seeds: &str, depth: &str) -> PathBuf {
    write_config(
        dir,
        "base.toml",
        &TINY.replace("epochs = 4", &format!("epochs = {epochs}")),
    );
    write_config(
        dir,
        "study.toml",
        &format!(
            "name = \"st\"\nbase = \"base.toml\"\nseeds = {seeds}\n[axes]\n{depth}\nwidth = [6]\n"
        ),
    )
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits until `cond` holds (or `secs` pass); returns whether it held.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(files(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

/// Parses every results file by its kind; panics naming the first that does not parse.
fn assert_all_parse(dir: &Path) {
    for f in files(dir) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".tmp"),
            "a temporary file was left: {}",
            f.display()
        );
        let bytes = std::fs::read(&f).unwrap();
        match f.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
            Some("csv") => {
                let mut r = csv::Reader::from_reader(&bytes[..]);
                let width = r.headers().unwrap().len();
                for rec in r.records() {
                    let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                    assert_eq!(rec.len(), width, "{}", f.display());
                }
            }
            Some("toml") => {
                toml::from_str::<toml::Table>(std::str::from_utf8(&bytes).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
            Some("png") => assert!(bytes.starts_with(b"\x89PNG"), "{}", f.display()),
            Some("svg") => assert!(
                String::from_utf8_lossy(&bytes)
                    .trim_end()
                    .ends_with("</svg>"),
                "{}",
                f.display()
            ),
            _ => {}
        }
    }
}

/// Hidden staging folders (`.<id>.partial`) anywhere under `dir`.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(".partial")
                {
                    v.push(p);
                } else {
                    v.extend(partials(&p));
                }
            }
        }
    }
    v
}

#[test]
fn ctrl_c_during_a_run_removes_the_unfinished_folder_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "tiny.toml",
        &TINY.replace("epochs = 4", "epochs = 100000"),
    );
    let out = dir.path().join("out");
    let child = spawn(&["run", arg(&cfg), "--out", arg(&out)]);
    // wait until training has started writing its staging folder
    assert!(
        wait_for(30, || !partials(&out).is_empty()),
        "no staging folder appeared"
    );
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert!(runs(&out, "tiny").is_empty(), "no half run may stay");
}

#[test]
fn ctrl_c_of_a_sweep_keeps_finished_cells_writes_the_summary_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(dir.path(), 30, "[1, 2, 3, 4]", "depth = [2]");
    let out = dir.path().join("out");
    let child = spawn(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "1"]);
    let finished = |out: &Path| {
        files(&out.join("st/cells"))
            .iter()
            .filter(|f| f.ends_with("summary.json") && !f.to_string_lossy().contains(".partial"))
            .count()
    };
    assert!(wait_for(60, || finished(&out) >= 1), "no cell finished");
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let done = finished(&out);
    assert!(done < 4, "interrupted too late");
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert_all_parse(&out);
    // the summary lists the study's cells; the finished ones are there
    let summary = std::fs::read_to_string(out.join("st/summary.csv")).unwrap();
    assert_eq!(summary.matches(",ok,").count(), done, "{summary}");
    // resume: only the rest runs
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{done} done, {} to run", 4 - done)),
        "{}",
        text(&o)
    );
    assert_eq!(finished(&out), 4);
    assert_all_parse(&out);
}

#[test]
fn sigkill_at_several_points_then_resume_completes_every_cell_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let st = study(dir.path(), 25, "[1, 2, 3]", "depth = [1, 2]");
    let out = dir.path().join("out");
    let cells_done = |out: &Path| -> usize {
        std::fs::read_dir(out.join("st/cells"))
            .map(|rd| {
                // a cell folder can vanish or change while the sweep runs: not done then
                rd.filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read_dir(e.path()).is_ok_and(|mut runs| {
                            runs.any(|r| r.is_ok_and(|r| r.path().join("summary.json").is_file()))
                        })
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    // kill points: right at the start, while the first cells train, after 2 and 4 cells
    let mut kills = 0;
    for (after_cells, extra_ms) in [(0usize, 150u64), (0, 1500), (2, 0), (4, 0)] {
        let child = spawn(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"]);
        wait_for(60, || cells_done(&out) >= after_cells);
        std::thread::sleep(Duration::from_millis(extra_ms));
        let mut child = child;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300)); // orphaned cells notice and exit
                                                        // whatever was written is whole
                                                        // a SIGKILL in the middle of `write_atomic` can leave its hidden `.<name>.tmp`
                                                        // behind (nothing runs after SIGKILL); never a half-written file under the real name
        for f in files(&out) {
            let p = f.to_string_lossy();
            if !p.contains(".partial") && p.ends_with(".tmp") {
                let name = f.file_name().unwrap().to_string_lossy();
                assert!(name.starts_with('.'), "{p}");
            }
        }
    }
    assert!(
        kills >= 3,
        "the sweep finished before it could be killed: {kills} kills"
    );
    let o = funnel(&["sweep", arg(&st), "--out", arg(&out), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    // exactly one finished run per cell, no staging folder left, every file parses
    let cells: Vec<PathBuf> = std::fs::read_dir(out.join("st/cells"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cells.len(), 6);
    for c in &cells {
        let entries: Vec<String> = std::fs::read_dir(c)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(entries.len(), 1, "{}: {entries:?}", c.display());
        assert!(c.join(&entries[0]).join("summary.json").is_file());
    }
    assert!(partials(&out).is_empty());
    // the resume rewrote the sweep's files, so no temporary file of theirs is left
    for f in files(&out) {
        let p = f.to_string_lossy();
        assert!(!p.ends_with(".tmp"), "{p} left after the resume");
    }
    assert_all_parse(&out);
    let summary = std::fs::read_to_string(out.join("st/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 7);
    assert_eq!(summary.matches(",ok,").count(), 6, "{summary}");
}
