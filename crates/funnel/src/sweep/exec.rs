//! Running one cell as a child `funnel run` process, knowing when a cell is done, and
//! copying finished cells (merge).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::interrupt;
use crate::results::sweep_dir::*;
use crate::results::write_atomic;

/// Whether a cell is done: a finished run whose frozen config is the cell's.
pub fn cell_done(sweep: &Path, cell: &Cell) -> bool {
    cell_run(&sweep.join("cells").join(&cell.id)).is_some_and(|run| {
        fs::read_to_string(run.join("config.toml")).is_ok_and(|t| t == cell.resolved)
    })
}

pub struct Outcome {
    pub id: String,
    pub ok: bool,
    pub message: String,
    /// Stopped by an interrupt: neither done nor failed; the next sweep reruns it.
    pub interrupted: bool,
}

pub fn run_cell(exe: &Path, base: &Path, sweep: &Path, cell: &Cell) -> Outcome {
    let cells = sweep.join("cells");
    let dir = cells.join(&cell.id);
    // anything left from an interrupted or changed attempt goes
    let _ = fs::remove_dir_all(&dir);
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(base).arg("--out").arg(&cells);
    cmd.env(PARENT_ENV, std::process::id().to_string());
    for o in &cell.overrides {
        cmd.arg("--set").arg(o);
    }
    let out = cmd.output();
    let (code, stderr) = match out {
        Ok(o) => (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        ),
        Err(e) => (None, format!("cannot start {}: {e}", exe.display())),
    };
    if code != Some(0) && code != Some(3) && interrupt::interrupted() {
        // the child was interrupted with us (exit 130, or killed): no error.txt, nothing kept
        let _ = fs::remove_dir_all(&dir);
        return Outcome {
            id: cell.id.clone(),
            ok: false,
            message: "interrupted".into(),
            interrupted: true,
        };
    }
    match code {
        Some(0) => Outcome {
            id: cell.id.clone(),
            ok: true,
            message: String::new(),
            interrupted: false,
        },
        Some(3) => Outcome {
            id: cell.id.clone(),
            ok: false,
            message: "failed (see summary.json)".into(),
            interrupted: false,
        },
        _ => {
            let tail: String = {
                let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                lines[lines.len().saturating_sub(5)..].join(" | ")
            };
            let msg = format!(
                "child exited with {}: {tail}",
                code.map_or("a signal".to_string(), |c| format!("code {c}"))
            );
            let _ = fs::create_dir_all(&dir);
            let _ = write_atomic(&dir.join("error.txt"), msg.as_bytes());
            Outcome {
                id: cell.id.clone(),
                ok: false,
                message: msg,
                interrupted: false,
            }
        }
    }
}

/// Set on a cell's child process: the pid of the sweep that started it.
pub const PARENT_ENV: &str = "FUNNEL_SWEEP_PARENT";

/// In a cell's child: exits as soon as the sweep that started it is gone (e.g. `kill -9`),
/// so a rerun never races an orphan for the same cell folder. The orphan's staging folder is
/// left behind and deleted by the rerun. A watchdog thread polls the parent pid (std only; no
/// `prctl`).
pub fn die_with_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    #[cfg(not(unix))]
    let _ = parent;
    #[cfg(unix)]
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(137);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // staging folders and temporary files
        }
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(&name))?;
        } else {
            fs::copy(&p, to.join(&name))?;
        }
    }
    Ok(())
}
