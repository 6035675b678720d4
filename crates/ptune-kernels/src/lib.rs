//! Ops that ptune's crates (the prompt encoder, the frozen backbone, the trainer) run in place
//! of burn's own where those cost more on a backend, each turned off by a switch the bench's
//! `--ablate` measures against.

pub mod flex_storage;
pub mod matmul;

pub use flex_storage::dense;
pub use matmul::{linear, matmul, one_buffer_matmuls};
