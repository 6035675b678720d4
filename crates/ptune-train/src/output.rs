//! Files a run writes: always to a temporary name first, then renamed, so a crash, a full disk or
//! Ctrl-C never leaves a half-written file under the real name.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically (same directory temp file + fsync + rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
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
