//! Files a run writes: always to a temporary name first, then renamed, so a crash, a full disk or
//! Ctrl-C never leaves a half-written file under the real name.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating its directory: the one atomic writer of the
/// project (`ptune_encoder::io::write_atomic`) behind a directory check.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(ptune_encoder::io::write_atomic(path, bytes)?)
}

/// JSON, pretty-printed, written atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

/// Lines for the user and for `train.log`: printed above any progress bars and appended to the log.
pub struct RunLog {
    file: std::sync::Mutex<fs::File>,
    progress: indicatif::MultiProgress,
}

impl RunLog {
    pub fn create(path: &Path, progress: indicatif::MultiProgress) -> Result<Self> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            file: std::sync::Mutex::new(file),
            progress,
        })
    }

    pub fn progress(&self) -> &indicatif::MultiProgress {
        &self.progress
    }

    /// Shows `line` on the terminal and records it in the log file.
    pub fn line(&self, line: &str) {
        self.progress.suspend(|| println!("{line}"));
        self.quiet(line);
    }

    /// Records `line` in the log file only.
    pub fn quiet(&self, line: &str) {
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
}
