//! The fuzz targets: each feeds one input to the project's own public parsing entry point, the
//! one the `ptune` commands call, through a file when that entry point takes a path.

mod backbone;
mod data;
mod encoder;
mod train;

pub use crate::mutate::MAX_INPUT;
use std::path::{Path, PathBuf};

/// One input: the bytes of each file the target reads, in the order of [`Target::parts`].
pub type Input = Vec<Vec<u8>>;

/// How a part is mutated on top of the byte-level mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Text,
    Json,
    /// JSON lines.
    Jsonl,
}

#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// The entry point exercised, for the docs and `--list`.
    pub entry: &'static str,
    pub parts: &'static [Format],
    /// Each file is cut to this many bytes after mutation.
    pub max_len: usize,
    /// Tokens of the format worth inserting.
    pub dict: &'static [&'static [u8]],
    pub seeds: fn() -> Vec<Input>,
    /// Runs one input in the scratch directory; true when the parser accepted it.
    pub run: fn(&Scratch, &[Vec<u8>]) -> bool,
}

/// Every target, in the order `--all` runs them.
pub fn all() -> Vec<Target> {
    [
        backbone::targets(),
        data::targets(),
        encoder::targets(),
        train::targets(),
    ]
    .concat()
}

pub fn find(name: &str) -> Option<Target> {
    all().into_iter().find(|t| t.name == name)
}

/// A target's private directory for the files its entry point reads.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    /// `/dev/shm/ptune-fuzz-<pid>/<target>` (else under `$TMPDIR`), created empty. A disk-backed
    /// `/tmp` made every target 30x slower on a busy machine: each run writes its files.
    pub fn new(target: &str) -> std::io::Result<Self> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base
            .join(format!("ptune-fuzz-{}", std::process::id()))
            .join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Writes `bytes` as `dir/name`; the fuzzer cannot go on without its scratch files.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).expect("writing a scratch file");
        path
    }
}

impl Drop for Scratch {
    /// Removes the target's directory, and the process's when it is the last one.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The workspace root, where the fixtures are.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the workspace")
        .to_path_buf()
}

/// The bytes of a file under the workspace root.
fn read(rel: &str) -> Vec<u8> {
    let path = root().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()))
}

/// Every file under `dir` (relative to the root) whose name ends with `suffix`, sorted.
fn files_under(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Single-part seeds: every fixture under `dir` ending with `suffix`.
fn seeds_under(dir: &str, suffix: &str) -> Vec<Input> {
    files_under(dir, suffix)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| vec![b])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_seeds_of_its_shape() {
        let targets = all();
        assert!(targets.len() >= 15);
        for t in &targets {
            let seeds = (t.seeds)();
            assert!(!seeds.is_empty(), "{} has no seeds", t.name);
            assert!(seeds.iter().all(|s| s.len() == t.parts.len()), "{}", t.name);
        }
    }

    /// Seeds the parser rejects would fuzz only its first checks.
    #[test]
    fn every_target_accepts_a_seed() {
        for t in all() {
            let scratch = Scratch::new(t.name).unwrap();
            let accepted = (t.seeds)().iter().filter(|s| (t.run)(&scratch, s)).count();
            assert!(accepted > 0, "{} accepts none of its seeds", t.name);
        }
    }
}
