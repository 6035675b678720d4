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

/// Converts little-endian float bytes of a known dtype to f32.
pub(crate) fn floats_from_le(bytes: &[u8], dtype: FloatDtype) -> Vec<f32> {
    match dtype {
        FloatDtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        FloatDtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        FloatDtype::Bf16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        FloatDtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
            .collect(),
    }
}

/// The float encodings checkpoints use for weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatDtype {
    F32,
    F16,
    Bf16,
    F64,
}

impl FloatDtype {
    pub(crate) fn size(self) -> usize {
        match self {
            FloatDtype::F16 | FloatDtype::Bf16 => 2,
            FloatDtype::F32 => 4,
            FloatDtype::F64 => 8,
        }
    }
}
