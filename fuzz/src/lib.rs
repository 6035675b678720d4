//! A stable-toolchain fuzzer for every parser ptune has (issue 11): in-process, mutational,
//! unguided by coverage. Each target feeds bytes to the project's own public entry point; a
//! panic, an oversized allocation or a hang is a finding, saved so `--replay` reproduces it.
//! `docs/fuzzing.md` says how to run it and what the long runs found.

pub mod crash;
pub mod engine;
pub mod json;
pub mod mutate;
pub mod targets;
