//! jemalloc as the process's malloc in libtorch builds, libtorch's allocations included (the
//! `jemalloc` feature; docs/performance.md, "The allocator"): every binary and test that links
//! this crate with the feature gets it.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, which it reads before `main` from this symbol (a user's `MALLOC_CONF`
/// still overrides them). `dirty_decay_ms:-1`: freed pages stay with the process for the next
/// tensor instead of going back to the kernel, which zeroes each one again when it is next
/// touched. A MultiRC evaluation spent a quarter of its time in the kernel doing that; without
/// it, evaluation runs 1.5-1.7x faster for 0.13-0.18 GB more peak memory.
#[unsafe(export_name = "malloc_conf")]
#[used]
static MALLOC_CONF: &u8 = &b"dirty_decay_ms:-1\0"[0];
