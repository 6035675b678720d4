//! CI's share of the fuzzing: a short fixed-seed run of every target, and every saved
//! regression input replayed. The long runs are in docs/fuzzing.md.

use ptune_fuzz::crash::{self, GuardedAlloc};
use ptune_fuzz::engine::{self, Config};
use ptune_fuzz::targets;
use std::path::Path;

#[global_allocator]
static ALLOC: GuardedAlloc = GuardedAlloc;

/// Executions per target: a few seconds in all on two cores.
const SHORT_RUN: u64 = 2_000;

fn setup() {
    crash::set_alloc_limit(1 << 30);
    crash::install_quiet_hook();
}

#[test]
fn a_short_run_of_every_target_finds_no_panic() {
    setup();
    let dir = std::env::temp_dir().join(format!("ptune-fuzz-ci-{}", std::process::id()));
    let cfg = Config {
        execs: SHORT_RUN,
        seed: 11,
        crash_dir: dir.clone(),
        progress_secs: 0,
        max_secs: 0,
    };
    let mut unexpected = Vec::new();
    for target in targets::all() {
        let report = engine::fuzz(&target, &cfg).expect("scratch dir");
        eprintln!("{}", engine::progress_line(&report));
        assert_eq!(report.execs, SHORT_RUN);
        for (site, f) in report.findings {
            eprintln!("  panic x{} at {site}: {}", f.count, f.message);
            unexpected.push(format!("{}: {} ({:?})", target.name, f.message, f.input));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The quiet hook also swallows this assertion's message: the findings are printed above.
    eprintln!("panics: {unexpected:#?}");
    assert!(unexpected.is_empty());
}

/// `fuzz/regressions/<target>/*`: inputs that once panicked, kept after their fix.
#[test]
fn regression_inputs_no_longer_panic() {
    setup();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    let mut failed = Vec::new();
    for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().to_string();
        let Some(target) = targets::find(&name) else {
            continue;
        };
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Err(message) = engine::replay(&target, &file.path()) {
                failed.push(format!("{}: {message}", file.path().display()));
            }
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression inputs replayed; still panicking: {failed:#?}");
    assert!(failed.is_empty());
}
