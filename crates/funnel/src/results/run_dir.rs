//! The results folder of one run, written so that a crash never leaves half a file or half a
//! run: files go to a temporary name and are renamed, and the whole run lives in a hidden
//! staging folder that is renamed to `<out>/<name>/<run-id>/` when it is complete.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::interrupt;

/// A run folder under construction. Dropped before [`RunDir::finish`] (an error or a panic
/// after it was created), it removes its staging folder.
pub struct RunDir {
    id: String,
    /// `None` once finished.
    staging: Option<PathBuf>,
    target: PathBuf,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = fs::remove_dir_all(&staging);
            interrupt::unregister_staging(&staging);
        }
    }
}

impl RunDir {
    /// Creates `<out>/<name>/.<run-id>.partial/`. The run id is the UTC start time and the
    /// seed, with `-2`, `-3`, … appended if that folder exists already.
    pub fn create(out: &Path, name: &str, seed: u64) -> io::Result<RunDir> {
        let parent = out.join(name);
        fs::create_dir_all(&parent)?;
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        for attempt in 1.. {
            let id = if attempt == 1 {
                format!("{stamp}-s{seed}")
            } else {
                format!("{stamp}-s{seed}-{attempt}")
            };
            let target = parent.join(&id);
            let staging = parent.join(format!(".{id}.partial"));
            if target.exists() || staging.exists() {
                continue;
            }
            match fs::create_dir(&staging) {
                Ok(()) => {
                    interrupt::register_staging(staging.clone());
                    return Ok(RunDir {
                        id,
                        staging: Some(staging),
                        target,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn staging(&self) -> &Path {
        self.staging
            .as_deref()
            .expect("the run folder is not finished yet")
    }

    /// Writes `file` atomically inside the run folder.
    pub fn write(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        write_atomic(&self.staging().join(file), contents)
    }

    /// Moves the staging folder to its final name.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        let staging = self.staging.take().expect("finished once");
        let _writing = interrupt::writing();
        if let Err(e) = fs::rename(&staging, &self.target) {
            self.staging = Some(staging); // let Drop clean it up
            return Err(e);
        }
        interrupt::unregister_staging(&staging);
        sync_dir(self.target.parent().unwrap_or(Path::new(".")));
        Ok(self.target.clone())
    }
}

/// Flushes a folder's entries to disk, so a rename survives a power loss (best effort: not
/// every file system supports it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes to `.<name>.tmp`, flushes it to disk, then renames it over `path` (creating its
/// folder if needed).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _writing = crate::interrupt::writing();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?; // e.g. `plots/`
    }
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}
