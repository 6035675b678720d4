//! The P-tuning prompt encoder and what it exports.
//!
//! * [`PromptEncoder`]: the trainable reparameterization (THUDM's LSTM reference, PEFT's MLP and
//!   LSTM, or a plain embedding table), built from a [`PromptEncoderConfig`]; `forward()` gives
//!   the `[n_prompt, H]` prompt matrix. Weights import from and export to PyTorch names.
//! * [`PromptPack`]: the trained prompt matrix plus what is needed to use it (template, backbone
//!   identity, relation, metrics), as `prompt.safetensors` + `prompt.json`.
//! * [`peft`]: the same matrix as a PEFT `P_TUNING` adapter directory, both ways.

mod config;
mod embedding;
mod encoder;
mod error;
pub mod io;
mod lstm;
mod mlp;
mod pack;
pub mod peft;
mod tensors;

pub use config::{EncoderKind, PromptEncoderConfig};
pub use embedding::EmbeddingEncoder;
pub use encoder::PromptEncoder;
pub use error::{EncoderError, Result};
pub use lstm::{LstmEncoder, StackedBiLstm};
pub use mlp::{MlpEncoder, MlpHead};
pub use pack::{BackboneIdentity, PromptPack};
pub use tensors::{HostTensor, HostTensorExt, NamedTensors};
