//! The `ptune` command line and the P-tuning model it trains: backbone + prompt encoder +
//! template, tied together from `ptune-backbone`, `ptune-encoder` and `ptune-data`.
//!
//! Predicting from Rust with a trained pack: [`pack_use::load`] loads it with its model once;
//! [`predict::rank_subjects`] (a relation's pack) and [`task_predict::rank_answers`] (a task's)
//! rank the answers of a batch of inputs, the numbers `ptune predict --pack` prints. The
//! runnable example is `examples/predict_batch.rs`.

pub mod adam;
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
pub mod alloc;
pub mod candidates;
pub mod device;
pub mod eval;
pub mod figure;
pub mod mixed;
pub mod model;
pub mod output;
pub mod pack_use;
pub mod plot;
pub mod predict;
pub mod predict_file;
pub mod prefix_cache;
pub mod rank;
pub mod serve;
pub mod spec;
pub mod task_batches;
pub mod task_predict;
pub mod train;
pub mod vocab;
