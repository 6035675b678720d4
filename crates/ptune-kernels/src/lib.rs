//! Ops that ptune's crates (the prompt encoder, the frozen backbone, the trainer) run in place
//! of burn's own where those cost more on a backend, each with a switch that the bench's
//! `--ablate` turns off; and flex's storage as plain slices, for kernels written on it.

pub mod flex_storage;
pub mod matmul;

pub use flex_storage::dense;
pub use matmul::{linear, matmul, one_buffer_matmuls};
