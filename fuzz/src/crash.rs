//! What a finding is and where it goes: caught panics, allocations no input should cause, and
//! hangs, each saved as `fuzz/crashes/<target>/<hash>` so `--replay` reproduces it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The input being run and where it would be saved, for the allocator and the watchdog, which
/// cannot be handed it: set before each run by [`Current::set`].
static CURRENT: Mutex<Option<(PathBuf, Vec<u8>)>> = Mutex::new(None);
/// Single allocations above this many bytes abort with the input saved (0: no limit yet).
static ALLOC_LIMIT: AtomicUsize = AtomicUsize::new(0);
static TRIPPED: AtomicBool = AtomicBool::new(false);
/// Bumped on every run; the watchdog declares a hang when it stops moving.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// The last panic's message and location, written by the quiet hook (any thread: rayon workers).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// The system allocator, but a single allocation above the limit saves the current input and
/// aborts: an allocation failure cannot be caught, so it must at least be reproducible.
pub struct GuardedAlloc;

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check_size(size: usize) {
    let limit = ALLOC_LIMIT.load(Ordering::Relaxed);
    if limit == 0 || size <= limit || TRIPPED.swap(true, Ordering::SeqCst) {
        return;
    }
    // Reentrant allocations from here on are small and pass straight through.
    let saved = save_current("alloc");
    eprintln!(
        "ptune-fuzz: an input asked for one allocation of {size} bytes (limit {limit}); {saved}"
    );
    std::process::abort();
}

/// Sets the single-allocation limit the guard enforces (the binary and tests install the guard).
pub fn set_alloc_limit(bytes: usize) {
    ALLOC_LIMIT.store(bytes, Ordering::Relaxed);
}

/// Writes the current input next to the crash it caused and says where.
fn save_current(kind: &str) -> String {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match current {
        Some((dir, input)) => match save(&dir, kind, &input) {
            Ok(path) => format!("input saved as {}", path.display()),
            Err(e) => format!("could not save the input: {e}"),
        },
        None => "no input was running".into(),
    }
}

/// Records the input about to run; `dir` is its target's crash directory.
pub fn set_current(dir: &Path, input: &[u8]) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((dir.to_path_buf(), input.to_vec()));
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Saves `input` as `dir/<kind>-<hash>` and returns the path.
pub fn save(dir: &Path, kind: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{kind}-{:016x}", hash(input)));
    std::fs::write(&path, input)?;
    Ok(path)
}

pub fn hash(input: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    h.finish()
}

/// Replaces the panic hook by one that only records the message: a fuzzer panics by design.
pub fn install_quiet_hook() {
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{location}: {message}"));
    }));
}

/// Runs `f`; a panic comes back as `Err("file:line: message")`.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "panic without a message".into())
    })
}

/// Starts a thread that saves the input and exits when one run takes longer than `limit`.
pub fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        let mut last = PROGRESS.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(limit);
            let now = PROGRESS.load(Ordering::Relaxed);
            if now == last && now != 0 {
                let saved = save_current("hang");
                eprintln!("ptune-fuzz: one input ran for over {limit:?}; {saved}");
                std::process::exit(3);
            }
            last = now;
        }
    });
}
