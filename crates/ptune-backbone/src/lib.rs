//! Frozen pretrained language models for P-tuning: BERT, RoBERTa, GPT-2 and the Llama family,
//! loaded from safetensors, PyTorch pickles or GGUF, computing what transformers computes.
//!
//! Every backbone exposes what P-tuning needs and nothing it doesn't: word embeddings, a
//! forward pass from input embeddings, and the LM head on chosen rows only.

mod activation;
pub mod attention;
pub mod backbone;
pub mod bert;
pub mod bundle;
pub mod config;
pub mod error;
pub mod gpt2;
pub mod hub;
mod index;
mod linear;
pub mod llama;
mod loader;
mod packed;
pub mod precision;
mod rope;
pub mod source;
pub mod synthetic;
pub mod tokenizer;
mod usage;
pub mod weights;

pub use activation::{Activation, fuse_activations};
pub use backbone::{Backbone, Objective};
pub use bundle::ModelBundle;
pub use config::ModelConfig;
pub use error::{BackboneError, Result};
pub use packed::{PrefixKv, SharedPrefix};
pub use precision::Precision;
pub use tokenizer::SpecialTokens;
pub use weights::{HostTensor, TensorSource};
