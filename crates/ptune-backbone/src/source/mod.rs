//! Readers of checkpoint files, each exposing its tensors through [`TensorSource`].

mod gguf;
mod pickle;
mod safetensors;

pub use self::gguf::GgufSource;
pub use self::pickle::PickleSource;
pub use self::safetensors::{SafetensorsSource, ShardedSafetensors};

use crate::error::{BackboneError, Result};
use crate::weights::TensorSource;
use std::path::Path;

/// Opens the weights of a Hugging Face style directory, preferring safetensors (memory-mapped)
/// over a PyTorch pickle, as transformers does.
pub fn open_dir(dir: &Path) -> Result<Box<dyn TensorSource>> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let pickle = dir.join("pytorch_model.bin");
    if single.is_file() {
        Ok(Box::new(SafetensorsSource::open(&single)?))
    } else if index.is_file() {
        Ok(Box::new(ShardedSafetensors::open(&index)?))
    } else if pickle.is_file() {
        Ok(Box::new(PickleSource::open(&pickle)?))
    } else {
        Err(BackboneError::Input(format!(
            "{}: no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)",
            dir.display()
        )))
    }
}
