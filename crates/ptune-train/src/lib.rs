//! The `ptune` command line and the P-tuning model it trains: backbone + prompt encoder +
//! template, tied together from `ptune-backbone`, `ptune-encoder` and `ptune-data`.

pub mod device;
pub mod model;
pub mod predict;
