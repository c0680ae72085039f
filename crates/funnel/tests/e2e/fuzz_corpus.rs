//! The fuzz corpus as a regression suite: every input kept under `fuzz/corpus/<target>/`
//! (including the crashes the fuzzers found, after their fixes) goes through the same
//! `funnel::fuzzing::<target>` function the libFuzzer target calls, and must not panic. The
//! hand-written valid examples under `fuzz/seeds/<target>/` must moreover be accepted, so a
//! target that refuses everything (and so fuzzes nothing past its first check) fails here.
//! See fuzz/README.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use funnel::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; fails when the folder is missing or holds none.
fn files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the fuzz corpus must be kept)", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{} holds no inputs: the replay would pass vacuously",
        dir.display()
    );
    files
}

/// Runs `f` on every file of `dir`; returns (files, accepted) and the files that panicked.
fn replay(f: fn(&[u8]) -> Result<(), String>, dir: &Path) -> (usize, usize, Vec<String>) {
    let mut accepted = 0;
    let mut panics = Vec::new();
    let files = files(dir);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| f(&bytes))) {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(_)) => {}
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panics.push(format!("{}: {msg}", path.display()));
            }
        }
    }
    (files.len(), accepted, panics)
}

#[test]
fn the_corpus_of_every_target_replays_without_a_panic() {
    let mut panics = Vec::new();
    for (name, f) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let (n, accepted, p) = replay(*f, &dir);
        assert!(n > 0, "{name}: no corpus files replayed");
        eprintln!("{name}: {n} corpus inputs replayed, {accepted} accepted");
        panics.extend(p);
    }
    assert!(
        panics.is_empty(),
        "inputs that panic:\n{}",
        panics.join("\n")
    );
}

#[test]
fn the_valid_seeds_of_every_target_are_accepted() {
    for (name, f) in TARGETS {
        let dir = fuzz_dir().join("seeds").join(name);
        for path in files(&dir) {
            let bytes = std::fs::read(&path).unwrap();
            if let Err(e) = f(&bytes) {
                panic!("{}: a valid example is refused: {e}", path.display());
            }
        }
    }
}

#[test]
fn every_fuzz_target_has_a_libfuzzer_entry_point_and_a_corpus() {
    for (name, _) in TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(
            text.contains(&format!("funnel::fuzzing::{name}(")),
            "{} does not call funnel::fuzzing::{name}",
            target.display()
        );
        assert!(
            fuzz_dir().join("corpus").join(name).is_dir(),
            "{name}: no corpus folder"
        );
    }
}
