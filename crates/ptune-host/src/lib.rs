//! The host side every ptune crate shares, without burn: f32 tensors by checkpoint name, float
//! decoding from checkpoint bytes, a checked memory-mapped safetensors reader, and the one seeded
//! RNG (so a seed gives the same shuffles and weights on every platform).

mod dtype;
mod error;
pub mod rng;
mod safetensors;
mod tensor;

pub use dtype::{FloatDtype, bf16_le, f16_le, f32_le};
pub use error::{Error, Result};
pub use rng::{SplitMix64, shuffle};
pub use safetensors::Safetensors;
pub use tensor::{HostTensor, NamedTensors, transpose};
