//! Checkpoint tensors by Hugging Face name, as f32 on the host, whatever the file format.

use crate::error::{BackboneError, Result};
pub use ptune_host::HostTensor;

/// A source of named tensors: safetensors (single or sharded), a PyTorch pickle, or a GGUF file
/// whose names were mapped to Hugging Face's. Reading is lazy so a model takes only what it uses.
pub trait TensorSource: Send + Sync {
    /// Every tensor name in the checkpoint.
    fn names(&self) -> Vec<String>;
    /// The tensor's shape, or `None` when the checkpoint lacks it.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Reads and converts one tensor; an absent name is `Ok(None)`.
    fn read(&self, name: &str) -> Result<Option<HostTensor>>;
    /// What to call this source in error messages (usually its path).
    fn describe(&self) -> String;

    /// Reads `name` and checks its shape against what the config implies.
    fn read_expect(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        read_checked(self.read(name)?, name, expected, || self.describe())
    }
}

fn read_checked(
    tensor: Option<HostTensor>,
    name: &str,
    expected: &[usize],
    describe: impl Fn() -> String,
) -> Result<HostTensor> {
    let tensor = tensor.ok_or_else(|| BackboneError::MissingTensor {
        name: name.to_string(),
        source_desc: describe(),
    })?;
    if tensor.shape != expected {
        return Err(BackboneError::ShapeMismatch {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: tensor.shape,
        });
    }
    check_finite(&tensor.data, name, describe)?;
    Ok(tensor)
}

/// A NaN or infinite weight turns every output into NaN; caught here, on the host, where the
/// tensor can be named (one pass over data just converted, a fraction of the conversion's cost).
fn check_finite(data: &[f32], name: &str, describe: impl FnOnce() -> String) -> Result<()> {
    if data.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let index = data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(BackboneError::NonFinite {
        name: name.to_string(),
        source_desc: describe(),
        index,
        value: data[index],
    })
}
