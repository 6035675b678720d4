//! The `ptune` command line and the P-tuning model it trains: backbone + prompt encoder +
//! template, tied together from `ptune-backbone`, `ptune-encoder` and `ptune-data`.

pub mod candidates;
pub mod device;
pub mod eval;
pub mod figure;
pub mod model;
pub mod output;
pub mod pack_use;
pub mod plot;
pub mod predict;
pub mod predict_file;
pub mod rank;
pub mod spec;
pub mod task_predict;
pub mod train;
pub mod vocab;
