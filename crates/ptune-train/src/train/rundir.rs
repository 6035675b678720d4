//! The run directory: ptune marks the directories it makes (`.ptune-run`), holds an exclusive
//! lock on that marker for the whole run, and only ever replaces a directory it made that holds
//! none of the run's inputs. Two processes can therefore never write into one run.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker file: its presence says "ptune made this directory"; its lock says "a run is using
/// it now".
pub const MARKER: &str = ".ptune-run";

/// A run directory held by this process. The lock goes with the value.
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks, without touching anything, that a new run may go to `out`: run before the model
    /// loads so that a mistake costs nothing; `create` checks again under the lock.
    pub fn check_new(out: &Path, overwrite: bool, inputs: &[&Path]) -> Result<()> {
        claim(out, overwrite, inputs).map(drop)
    }

    /// Makes `out` for a new run, replacing a previous ptune run there when `overwrite` allows.
    /// Two processes racing for one `out`: `create_dir` lets exactly one of them make it.
    pub fn create(out: &Path, overwrite: bool, inputs: &[&Path]) -> Result<Self> {
        // The previous run stays locked until it is deleted.
        let previous = claim(out, overwrite, inputs)?;
        let old = previous.as_ref().map(|_| set_aside(out)).transpose()?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::create_dir(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} already exists: another process created it just now; choose another --out",
                out.display()
            ),
            _ => anyhow::Error::new(e).context(format!("creating {}", out.display())),
        })?;
        let run = match mark(out) {
            Ok(lock) => Self {
                path: out.to_path_buf(),
                _lock: lock,
            },
            Err(e) => {
                let _ = fs::remove_dir_all(out);
                return Err(e);
            }
        };
        if let Some(old) = old {
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        Ok(run)
    }

    /// Opens an existing run for `--resume`, locked, with the temporary files of an interrupted
    /// process removed. A run made before markers existed is recognised by its `run.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join(MARKER).is_file() {
            if !dir.join("run.json").is_file() {
                bail!(
                    "{} is not a ptune run directory (it has no run.json)",
                    dir.display()
                );
            }
            drop(mark(dir)?);
        }
        let marker = open_marker(dir)?;
        lock(&marker, dir)?;
        sweep_temporaries(dir)?;
        Ok(Self {
            path: dir.to_path_buf(),
            _lock: marker,
        })
    }
}

/// The locked marker of a previous run at `out` that a new run may replace (`None`: nothing is
/// there); refuses one it may not, before anything is touched.
fn claim(out: &Path, overwrite: bool, inputs: &[&Path]) -> Result<Option<File>> {
    if !out.exists() && !out.is_symlink() {
        return Ok(None);
    }
    if !overwrite {
        bail!(
            "{} already exists: pass --overwrite to replace it, or choose another --out",
            out.display()
        );
    }
    let marker = open_marker(out)?;
    check_replaceable(out, inputs)?;
    lock(&marker, out)?;
    Ok(Some(marker))
}

/// Writes the marker under a temporary name, locks it, then renames it into place: whoever sees
/// the marker also finds it locked.
fn mark(dir: &Path) -> Result<File> {
    let tmp = dir.join(format!("{MARKER}.tmp-{}", std::process::id()));
    let mut file = File::create_new(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    lock(&file, dir)?;
    writeln!(
        file,
        "{{\"made_by\": \"ptune {}\", \"what\": \"a ptune run directory; ptune train --overwrite may replace it\"}}",
        env!("CARGO_PKG_VERSION")
    )
    .and_then(|()| fs::rename(&tmp, dir.join(MARKER)))
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(file)
}

fn open_marker(dir: &Path) -> Result<File> {
    File::open(dir.join(MARKER)).map_err(|_| {
        anyhow::anyhow!(
            "{} was not made by ptune train (it has no {MARKER} marker): ptune only replaces its own run directories; remove it yourself or choose another --out",
            dir.display()
        )
    })
}

fn lock(file: &File, dir: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is in use by another ptune process; wait for it to finish or choose another --out",
            dir.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("locking {}", dir.display())))
        }
    }
}

/// Refuses to replace a directory that holds an input of the run, or the working directory.
fn check_replaceable(out: &Path, inputs: &[&Path]) -> Result<()> {
    let real = |p: &Path| fs::canonicalize(p).ok();
    let Some(target) = real(out) else {
        return Ok(());
    };
    if !target.is_dir() {
        bail!(
            "{} is not a directory: --out names the run directory to create",
            out.display()
        );
    }
    for input in inputs {
        if real(input).is_some_and(|i| i.starts_with(&target)) {
            bail!(
                "{} holds {}, an input of this run: --overwrite would delete it; choose another --out",
                out.display(),
                input.display()
            );
        }
    }
    if std::env::current_dir()
        .ok()
        .and_then(|d| real(&d))
        .is_some_and(|cwd| cwd.starts_with(&target))
    {
        bail!(
            "{} is (or holds) the working directory: --overwrite would delete it; choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// Renames the old run out of the way (a sibling, hidden, named for this process), so the new run
/// can be made under the name before the old one is deleted.
fn set_aside(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = out.with_file_name(format!(".{name}.replaced-{}", std::process::id()));
    fs::rename(out, &aside).with_context(|| format!("moving {} aside", out.display()))?;
    Ok(aside)
}

/// Removes what a killed process left half-written: per-process temporary files
/// (`.NAME.tmp-PID`) and checkpoint directories (`checkpoint.tmp-PID`), anywhere in the run.
fn sweep_temporaries(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry.file_type()?;
        if is_temporary(&name) {
            let removed = if kind.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.with_context(|| format!("removing {}", path.display()))?;
        } else if kind.is_dir() {
            sweep_temporaries(&path)?;
        }
    }
    Ok(())
}

/// The names ptune gives its temporary files and directories: `….tmp-<pid>`.
fn is_temporary(name: &str) -> bool {
    name.rsplit_once(".tmp-")
        .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_ptunes_own() {
        assert!(is_temporary(".prompt.json.tmp-123"));
        assert!(is_temporary("checkpoint.tmp-9"));
        assert!(is_temporary(".ptune-run.tmp-77"));
        assert!(!is_temporary("checkpoint"));
        assert!(!is_temporary("notes.tmp-draft"));
        assert!(!is_temporary("prompt.safetensors"));
    }

    #[test]
    fn a_second_process_cannot_take_a_held_run() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let held = RunDir::create(&out, false, &[]).unwrap();
        let err = RunDir::open(&out).err().unwrap().to_string();
        assert!(err.contains("in use by another ptune process"), "{err}");
        let err = RunDir::create(&out, true, &[]).err().unwrap().to_string();
        assert!(err.contains("in use by another ptune process"), "{err}");
        drop(held);
        RunDir::open(&out).unwrap();
    }
}
