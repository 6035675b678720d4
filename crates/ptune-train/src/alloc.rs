//! jemalloc as the process's malloc in libtorch builds, libtorch's allocations included (the
//! `jemalloc` feature; docs/performance.md, "The allocator"): every binary and test that links
//! this crate with the feature gets it.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
