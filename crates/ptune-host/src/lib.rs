//! The host side every ptune crate shares, without burn: f32 tensors by checkpoint name, float
//! decoding from checkpoint bytes, and a checked memory-mapped safetensors reader.

mod dtype;
mod error;
mod safetensors;
mod tensor;

pub use dtype::{FloatDtype, bf16_le, f16_le, f32_le};
pub use error::{Error, Result};
pub use safetensors::Safetensors;
pub use tensor::{HostTensor, NamedTensors, transpose};
