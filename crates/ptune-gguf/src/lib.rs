//! A GGUF (llama.cpp) reader, so a frozen Llama-family model can be loaded from the single file
//! llama.cpp users already have, without Python or a separate `config.json` / `tokenizer.json`.
//!
//! What it provides:
//!
//! * [`GgufFile`]: the memory-mapped file, header versions 2 and 3, every metadata value type
//!   (typed getters in [`Metadata`] accept any integer width where an integer is expected), tensor
//!   infos, and [`GgufFile::read_f32`], which dequantizes a tensor to f32 in PyTorch's
//!   row-major shape (ggml lists dimensions fastest-first, so they are reversed). Supported types
//!   are listed in [`GgmlType::SUPPORTED_NAMES`]: F32, F16, BF16, the legacy quants Q4_0, Q4_1,
//!   Q5_0, Q5_1, Q8_0 and the K-quants Q2_K to Q6_K, decoded exactly like ggml's
//!   `dequantize_row_*` (tests compare with gguf-py bit for bit). Other types, such as the
//!   IQ* codebook quants, give [`GgufError::UnsupportedType`].
//! * [`hf`]: for `llama`, `mistral` (read as llama) and `qwen2` files, a transformers
//!   `config.json` equivalent ([`hf_config`]) and [`HfView`], which serves tensors under
//!   transformers' names (`model.layers.0.self_attn.q_proj.weight`, ...).
//! * [`tokenizer()`]: the byte-level BPE tokenizer (`tokenizer.ggml.model == "gpt2"`) rebuilt from
//!   metadata as a `tokenizers::Tokenizer`, with control tokens as special tokens and the
//!   pre-tokenizer split named by `tokenizer.ggml.pre`; BOS/EOS are added only when the
//!   metadata's `add_bos_token` / `add_eos_token` say so. [`TokenizerMetadata`] has the declared ids and flags.
//!
//! Why Q and K are un-permuted: llama.cpp applies RoPE to interleaved pairs `(2i, 2i+1)` of each
//! head, while transformers' Llama rotates the halves `(i, i + d/2)`. Its converter
//! (`convert_hf_to_gguf.py`) therefore reorders the rows of every Llama Q and K projection (per
//! head; K with the KV head count). [`HfView::read`] undoes that, so its weights equal the
//! original checkpoint's and a model using transformers' `rotate_half` RoPE works unchanged.
//! Qwen2 files are converted without the permutation and read as stored.
//!
//! Every malformed input (truncated file, bad magic, unknown version, offsets past the end,
//! wrong metadata types) is a [`GgufError`], never a panic.

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
pub use tokenizer::{TokenizerMetadata, tokenizer, tokenizer_metadata};
pub use value::{Metadata, Value};

#[cfg(test)]
mod tests {
    /// The backbone keeps these behind `Send + Sync` trait objects.
    #[test]
    fn readers_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::GgufFile>();
        check::<crate::HfView>();
    }
}
