//! jemalloc as the process's malloc in libtorch builds, libtorch's allocations included (the
//! `jemalloc` feature; docs/performance.md, "The allocator"): every binary and test that links
//! this crate with the feature gets it.
//!
//! [`keep_freed_pages`] replaces jemalloc's time-based decay with a purge every few seconds.
//! Under decay (any finite `dirty_decay_ms`, even 1,000 s) a long-row evaluation page-faulted
//! 15 million times a minute, a third of its CPU time in the kernel, zeroing fresh pages for
//! tensors of sizes it had just freed; with decay off and nothing purged, training's resident
//! set grew without bound (libtorch's sizes vary by batch and jemalloc does not coalesce
//! dirty extents). Kept for a few seconds, pages are reused and the growth is bounded.

use std::ffi::{CStr, CString, c_void};
use std::ptr::null_mut;
use std::sync::Once;
use std::time::Duration;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long freed pages wait for reuse before they go back to the system: a few training parts
/// or evaluation batches of long rows.
const PURGE_EVERY: Duration = Duration::from_secs(5);

/// jemalloc's `MALLCTL_ARENAS_ALL`: the arena index meaning every arena.
const ALL_ARENAS: usize = 4096;

/// Turns jemalloc's decay off in every arena, those made later included, and starts the thread
/// that purges them; once per process. A `MALLOC_CONF` in the environment is left to rule.
pub fn keep_freed_pages() {
    static START: Once = Once::new();
    START.call_once(|| {
        if std::env::var_os("MALLOC_CONF").is_some() {
            return;
        }
        let purge = name(&format!("arena.{ALL_ARENAS}.purge"));
        let purger = std::thread::Builder::new()
            .name("ptune-purge".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(PURGE_EVERY);
                    void(&purge);
                }
            });
        // Without the thread nothing would ever be purged: jemalloc's decay then stays.
        if purger.is_ok() {
            set_dirty_decay(-1);
        }
    });
}

/// Sets `dirty_decay_ms` in every arena made so far and as the default of those made later.
fn set_dirty_decay(mut ms: isize) {
    write(c"arenas.dirty_decay_ms", &mut ms);
    for arena in 0..narenas() {
        // Arenas not yet made refuse; they take the default above.
        write(&name(&format!("arena.{arena}.dirty_decay_ms")), &mut ms);
    }
}

/// How many arenas jemalloc has room for (automatic ones and the oversize one).
fn narenas() -> u32 {
    let mut n: u32 = 0;
    let mut len = size_of::<u32>();
    // SAFETY: `arenas.narenas` is an `unsigned`, read into a `u32` of the length given.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arenas.narenas".as_ptr(),
            (&raw mut n).cast::<c_void>(),
            &raw mut len,
            null_mut(),
            0,
        )
    };
    if rc == 0 { n } else { 0 }
}

/// Sets a `ssize_t` option where jemalloc accepts it.
fn write(name: &CStr, value: &mut isize) {
    // SAFETY: the `*_decay_ms` options are `ssize_t`, written from an `isize` of that size.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            null_mut(),
            null_mut(),
            (value as *mut isize).cast::<c_void>(),
            size_of::<isize>(),
        )
    };
}

/// Runs an action that neither reads nor writes a value (`arena.<i>.purge`).
fn void(name: &CStr) {
    // SAFETY: void controls take no buffers; every pointer is null.
    unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), null_mut(), null_mut(), null_mut(), 0) };
}

fn name(s: &str) -> CString {
    CString::new(s).expect("mallctl names have no NUL")
}
