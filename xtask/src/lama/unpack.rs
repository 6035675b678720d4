//! Unpacking the archive and finding the LAMA folder inside it. The pack's internal nesting is
//! not something to rely on (the P-tuning code reads it from `data/LAMA`), so the folder is found
//! by what it holds: `fact-retrieval/` beside `relations.jsonl` (or the reference code's
//! `single_relations/`, from which `relations.jsonl` is written).

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::GzDecoder;
use std::fs;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

/// How deep below the unpack folder the LAMA folder may sit.
const MAX_DEPTH: usize = 6;

/// Unpacks `archive` (tar.gz) into `into` and returns the LAMA folder inside it, completed.
pub fn unpack(archive: &Path, into: &Path) -> Result<PathBuf> {
    extract(archive, into)?;
    let root = find_root(into).ok_or_else(|| {
        anyhow!(
            "{} holds no folder with fact-retrieval/ and relations.jsonl, so it is not the P-tuning LAMA pack",
            archive.display()
        )
    })?;
    if !root.join("relations.jsonl").is_file() {
        write_relations(&root)?;
    }
    for vocab in ["29k-vocab.json", "34k-vocab.json"] {
        if !root.join(vocab).is_file() {
            eprintln!(
                "note: the archive has no {vocab}; vocabulary strategies that need it will be unavailable"
            );
        }
    }
    Ok(root)
}

/// Whether `dir` already holds the layout the loader reads.
pub fn is_lama_dir(dir: &Path) -> bool {
    dir.join("fact-retrieval").is_dir() && dir.join("relations.jsonl").is_file()
}

fn extract(archive: &Path, into: &Path) -> Result<()> {
    let file =
        fs::File::open(archive).with_context(|| format!("could not open {}", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    // `unpack` refuses entries that would land outside `into`.
    tar.unpack(into).map_err(|e| {
        anyhow!(
            "{} is not a readable tar.gz archive ({e})",
            archive.display()
        )
    })
}

/// The shallowest folder holding `fact-retrieval/` and a relation list, breadth-first in name
/// order so the answer does not depend on the file system.
fn find_root(top: &Path) -> Option<PathBuf> {
    let mut level = vec![top.to_path_buf()];
    for _ in 0..=MAX_DEPTH {
        if let Some(found) = level.iter().find(|d| holds_lama(d)) {
            return Some(found.clone());
        }
        level = level.iter().flat_map(|d| subdirs(d)).collect();
    }
    None
}

fn holds_lama(dir: &Path) -> bool {
    dir.join("fact-retrieval").is_dir()
        && (dir.join("relations.jsonl").is_file() || dir.join("single_relations").is_dir())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name() != "__MACOSX")
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Writes `relations.jsonl` from `single_relations/<id>.jsonl` (one relation per file), in
/// property-number order.
fn write_relations(root: &Path) -> Result<()> {
    let dir = root.join("single_relations");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("could not read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort_by_key(|p| property_order(p));
    if files.is_empty() {
        bail!(
            "{} has neither relations.jsonl nor any single_relations/*.jsonl",
            root.display()
        );
    }
    let out_path = root.join("relations.jsonl");
    let mut out = fs::File::create(&out_path)
        .with_context(|| format!("could not create {}", out_path.display()))?;
    for file in files {
        let text = fs::read_to_string(&file)
            .with_context(|| format!("could not read {}", file.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(out, "{line}")
                .with_context(|| format!("could not write {}", out_path.display()))?;
        }
    }
    Ok(())
}

/// `P17` before `P101`; names that are not `P<number>` sort last, by name.
fn property_order(path: &Path) -> (u64, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let number = stem.strip_prefix('P').and_then(|n| n.parse().ok());
    (number.unwrap_or(u64::MAX), stem)
}
