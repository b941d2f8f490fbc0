//! One writer per run folder: an exclusive lock on `run.lock`, which holds
//! the owner's host and pid. The operating system releases the lock when
//! its process ends, however it ends (`kill -9` included), so a stale lock
//! never blocks a rerun; a second writer is refused with the owner's pid.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::LOCK;
use super::records::Writer;
use crate::CoreError;

/// The lock of a run folder, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the run folder `root` (which must exist), or says
    /// who holds it.
    pub fn acquire(root: &Path) -> Result<Self, CoreError> {
        let path = root.join(LOCK);
        let mut file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                return Err(CoreError::file(
                    root,
                    format!(
                        "another rxalign process is writing this run folder ({}); wait for it, or stop it first",
                        if owner.is_empty() {
                            "its pid is not written yet".to_string()
                        } else {
                            format!("pid {owner}, from {LOCK}")
                        }
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(CoreError::io(&path, e)),
        }
        let me = Writer::this_process();
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{} on {}", me.pid, me.host)?;
            file.flush()
        };
        write(&mut file).map_err(|e| CoreError::io(&path, e))?;
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    /// Clears the owner (the file stays: removing it could let two
    /// processes lock two different files of the same name).
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Opens (creating) a lock file, keeping what it holds.
fn open_lock_file(path: &Path) -> Result<File, CoreError> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| CoreError::io(path, e))
}

/// The lock of an experiment folder's plan (`experiment.lock`): held
/// briefly while a process checks and writes `experiment.json` and claims
/// the folders of its runs, so that two processes with different settings
/// cannot both write into one experiment folder. Waits while another
/// process holds it; released when dropped or when its process ends.
#[derive(Debug)]
pub struct ExperimentLock {
    file: File,
}

/// The file of [`ExperimentLock`].
pub const EXPERIMENT_LOCK: &str = "experiment.lock";

impl ExperimentLock {
    /// Takes the lock of the experiment folder `dir` (which must exist),
    /// waiting for another holder to let go.
    pub fn acquire(dir: &Path) -> Result<Self, CoreError> {
        let path = dir.join(EXPERIMENT_LOCK);
        let file = open_lock_file(&path)?;
        file.lock().map_err(|e| CoreError::io(&path, e))?;
        Ok(Self { file })
    }
}

impl Drop for ExperimentLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Whether another process holds the lock of the run folder `root` (its
/// `run.lock`); a folder without one is not held.
pub fn is_held(root: &Path) -> bool {
    let path = root.join(LOCK);
    let Ok(file) = File::options().read(true).write(true).open(&path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_owners_pid() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("another rxalign process is writing this run folder")
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(lock);
        let again = RunLock::acquire(dir.path()).unwrap();
        assert!(again.path().ends_with(LOCK));
    }
}
