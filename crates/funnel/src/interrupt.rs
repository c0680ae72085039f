//! Ctrl-C (SIGINT), SIGTERM and SIGHUP: a results folder is never left half-written.
//!
//! Files are written under a temporary name and renamed ([`crate::results::write_atomic`]),
//! and a run lives in a hidden staging folder until it is complete. On an interrupt, funnel
//! waits for the file being written to be renamed into place, removes the staging folders of
//! unfinished runs, and exits with 130. A sweep instead stops starting cells, lets the running
//! cells' own handlers clean up (a terminal's Ctrl-C reaches the whole process group), writes
//! its summary of the cells that finished, and exits 130; rerunning it resumes. A second
//! interrupt during that wait exits at once (running children clean up on their own).
//! SIGKILL cannot be caught: what it leaves is a hidden `.…partial` staging folder, which the
//! sweep's resume deletes and `funnel run` ignores.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Exit code of an interrupted command (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: u8 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// 0: exit at once after cleanup (run, measure); 1: let the caller finish (sweep).
static MODE: AtomicU8 = AtomicU8::new(0);
/// Held while one file is written and renamed, and while a run folder is moved into place.
static WRITING: Mutex<()> = Mutex::new(());
/// Staging folders of runs under construction.
static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        let again = INTERRUPTED.swap(true, Ordering::SeqCst);
        if MODE.load(Ordering::SeqCst) == 1 && !again {
            crate::term::warn(format_args!(
                "\ninterrupted: waiting for the running cells to clean up, then writing the summary (interrupt again to stop at once; rerun the sweep to resume)"
            ));
            return;
        }
        // Let the file being written reach its final name; then no other write starts.
        let _writing = lock(&WRITING);
        let staged: Vec<PathBuf> = lock(&STAGING).drain(..).collect();
        for dir in &staged {
            let _ = std::fs::remove_dir_all(dir);
        }
        crate::term::warn(format_args!(
            "\ninterrupted: {} unfinished run folder(s) removed; every finished file is complete",
            staged.len()
        ));
        std::process::exit(EXIT_INTERRUPTED as i32);
    });
}

/// A sweep handles the interrupt itself: [`interrupted`] turns true and the sweep winds down.
pub fn defer_to_caller() {
    MODE.store(1, Ordering::SeqCst);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Held across one atomic write (see the module docs).
pub fn writing() -> MutexGuard<'static, ()> {
    lock(&WRITING)
}

pub fn register_staging(dir: PathBuf) {
    lock(&STAGING).push(dir);
}

pub fn unregister_staging(dir: &std::path::Path) {
    lock(&STAGING).retain(|d| d != dir);
}
