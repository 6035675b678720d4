//! GGUF reader (in progress).

mod cursor;
mod dequant;
pub mod error;
mod file;
mod ggml_type;
mod header;
pub mod hf;
mod tensor;
pub mod tokenizer;
pub mod value;

pub use error::{GgufError, Result};
pub use file::GgufFile;
pub use ggml_type::GgmlType;
pub use hf::{HfView, hf_config};
pub use tensor::TensorInfo;
pub use tokenizer::{SpecialTokens, special_tokens, tokenizer};
pub use value::{Metadata, Value};
