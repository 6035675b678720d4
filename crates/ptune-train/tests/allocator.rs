//! jemalloc's policy in libtorch builds (src/alloc.rs): a freed block is reused without the
//! kernel zeroing fresh pages for it, and what is freed still goes back to the system within a
//! few seconds. One process of its own (this file), since page faults and the resident set are
//! counted per process. Runs with `--features jemalloc` (tch builds: `cargo xtask build
//! --backend tch --parity`).
#![cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]

use std::time::{Duration, Instant};

const BLOCK: usize = 64 << 20;

/// The process's minor page faults so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(7).unwrap().parse().unwrap()
}

/// The process's resident set in bytes (`VmRSS` in `/proc/self/status`, kB whatever the page
/// size).
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap();
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kb * 1024
}

/// The minor page faults `f` takes.
fn faults_of(f: impl Fn()) -> u64 {
    let before = minor_faults();
    f();
    minor_faults() - before
}

/// A block of `BLOCK` bytes written through, as a tensor's output is, then freed.
fn touch_and_free() {
    let block = vec![1u8; BLOCK];
    std::hint::black_box(&block);
}

#[test]
fn freed_blocks_are_reused_then_returned() {
    ptune_train::alloc::keep_freed_pages();
    // A block of fresh pages: what faulting every page in costs, whatever the page size.
    let fresh = faults_of(touch_and_free);
    // Ten rounds: the purging thread may wake inside one of them, never in most.
    let mut faults: Vec<u64> = (0..10).map(|_| faults_of(touch_and_free)).collect();
    faults.sort();
    assert!(
        faults[5] < fresh / 10,
        "a freed {BLOCK}-byte block faulted {} pages in again, where a fresh one took {fresh} (median of {faults:?})",
        faults[5]
    );

    // Freed and left alone, it leaves the resident set within a purge period or two.
    let block = vec![1u8; 4 * BLOCK];
    std::hint::black_box(&block);
    let held = resident();
    drop(block);
    let start = Instant::now();
    while resident() + 3 * BLOCK as u64 > held {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{} MB freed 15 s ago are still resident",
            (4 * BLOCK) >> 20
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
