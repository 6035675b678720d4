//! The fuzzing loop: seeds first, then mutants of the corpus (the seeds plus some accepted
//! mutants, a cheap stand-in for coverage feedback), every run under `catch_unwind`.

use crate::crash;
use crate::json;
use crate::mutate::{self, Rng};
use crate::targets::{Format, Input, Scratch, Target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Between the files of a multi-file input when it is saved as one crash file.
pub const PART_SEPARATOR: &[u8] = b"\n\0--ptune-fuzz-next-file--\0\n";
/// Accepted mutants kept besides the seeds.
const CORPUS_EXTRA: usize = 64;

pub struct Config {
    pub execs: u64,
    pub seed: u64,
    /// Crashes go to `<crash_dir>/<target>/`.
    pub crash_dir: PathBuf,
    /// Prints progress to stderr every this many seconds (0: never).
    pub progress_secs: u64,
    /// Stop a target after this many seconds even if `execs` is not reached (0: no limit).
    pub max_secs: u64,
}

/// One panic site: how often it was hit, its message and the first input that hit it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub message: String,
    pub count: u64,
    pub input: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub accepted: u64,
    pub secs: f64,
    /// By panic location (`file:line`).
    pub findings: BTreeMap<String, Finding>,
}

impl Report {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.secs.max(1e-9)
    }
}

/// Runs `cfg.execs` inputs through `target`.
pub fn fuzz(target: &Target, cfg: &Config) -> std::io::Result<Report> {
    let scratch = Scratch::new(target.name)?;
    let crash_dir = cfg.crash_dir.join(target.name);
    let mut rng = Rng::new(cfg.seed ^ crash::hash(target.name.as_bytes()));
    let seeds = (target.seeds)();
    let mut corpus = seeds.clone();
    let mut report = Report {
        target: target.name,
        execs: 0,
        accepted: 0,
        secs: 0.0,
        findings: BTreeMap::new(),
    };
    let start = Instant::now();
    let mut last_progress = 0;
    for i in 0..cfg.execs {
        let input = match seeds.get(i as usize) {
            Some(seed) => seed.clone(),
            None => mutant(&mut rng, target, &corpus),
        };
        let joined = join(&input);
        crash::set_current(&crash_dir, &joined);
        match crash::catch(|| (target.run)(&scratch, &input)) {
            Ok(true) => {
                report.accepted += 1;
                keep(&mut rng, &mut corpus, seeds.len(), input);
            }
            Ok(false) => {}
            Err(message) => record(&mut report, &crash_dir, message, &joined),
        }
        report.execs += 1;
        let secs = start.elapsed().as_secs();
        if cfg.max_secs > 0 && secs >= cfg.max_secs {
            break;
        }
        if cfg.progress_secs > 0 && secs >= last_progress + cfg.progress_secs {
            last_progress = secs;
            report.secs = start.elapsed().as_secs_f64();
            eprintln!("{}", progress_line(&report));
        }
    }
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}

pub fn progress_line(r: &Report) -> String {
    format!(
        "{}: {} execs, {:.0}/s, {:.1}% accepted, {} panic sites",
        r.target,
        r.execs,
        r.execs_per_sec(),
        100.0 * r.accepted as f64 / r.execs.max(1) as f64,
        r.findings.len()
    )
}

/// A mutant of a corpus entry: one of its files mutated, structure-aware for JSON half the time.
fn mutant(rng: &mut Rng, target: &Target, corpus: &[Input]) -> Input {
    let mut input = corpus[rng.below(corpus.len())].clone();
    let donor = &corpus[rng.below(corpus.len())];
    let part = rng.below(input.len());
    let structured = match target.parts[part] {
        Format::Json if rng.one_in(2) => json::mutate(rng, &input[part]),
        Format::Jsonl if rng.one_in(2) => json::mutate_lines(rng, &input[part]),
        _ => None,
    };
    match structured {
        Some(bytes) => input[part] = bytes,
        None => mutate::bytes(rng, &mut input[part], &donor[part], target.dict),
    }
    input[part].truncate(target.max_len);
    input
}

/// Keeps some accepted mutants: valid-but-odd inputs reach deeper than the seeds.
fn keep(rng: &mut Rng, corpus: &mut Vec<Input>, n_seeds: usize, input: Input) {
    if !rng.one_in(16) {
        return;
    }
    if corpus.len() < n_seeds + CORPUS_EXTRA {
        corpus.push(input);
    } else {
        let i = n_seeds + rng.below(CORPUS_EXTRA);
        corpus[i] = input;
    }
}

/// Counts a panic by site and saves the first input that reached it.
fn record(report: &mut Report, crash_dir: &Path, message: String, input: &[u8]) {
    let site = message.split(": ").next().unwrap_or_default().to_string();
    let finding = report.findings.entry(site).or_insert_with(|| Finding {
        input: crash::save(crash_dir, "panic", input).ok(),
        message,
        count: 0,
    });
    finding.count += 1;
}

/// The files of an input as one byte string (a single file is kept as is).
pub fn join(input: &Input) -> Vec<u8> {
    input.join(PART_SEPARATOR)
}

/// The inverse of [`join`] for a target of `n` files; missing files are empty.
pub fn split(bytes: &[u8], n: usize) -> Input {
    let mut parts = Vec::with_capacity(n);
    let mut rest = bytes;
    while parts.len() + 1 < n {
        match find(rest, PART_SEPARATOR) {
            Some(at) => {
                parts.push(rest[..at].to_vec());
                rest = &rest[at + PART_SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest.to_vec());
    parts.resize(n, Vec::new());
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs one saved input: `Ok(accepted)`, or the panic's message.
pub fn replay(target: &Target, path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let input = split(&bytes, target.parts.len());
    let scratch = Scratch::new(target.name).map_err(|e| e.to_string())?;
    let crash_dir = std::env::temp_dir().join("ptune-fuzz-replay");
    crash::set_current(&crash_dir, &bytes);
    crash::catch(|| (target.run)(&scratch, &input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_inverts_join() {
        let input = vec![b"{}".to_vec(), Vec::new(), b"abc".to_vec()];
        assert_eq!(split(&join(&input), 3), input);
        assert_eq!(split(b"only", 2), vec![b"only".to_vec(), Vec::new()]);
        assert_eq!(split(b"x", 1), vec![b"x".to_vec()]);
    }
}
