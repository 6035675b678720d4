//! The one error type of this crate: every malformed or unsupported input ends here, never in a panic.

use std::path::PathBuf;

/// Everything that can go wrong reading a GGUF file or turning it into a Hugging Face view.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a GGUF file: it starts with {found:?} instead of the magic \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("GGUF version {0} is not supported; this reader handles versions 2 and 3")]
    UnsupportedVersion(u32),
    #[error("big-endian GGUF files are not supported; convert the model to a little-endian GGUF")]
    BigEndian,
    #[error("the file ends (at {len} bytes) in the middle of {what}; it is truncated or corrupt")]
    Truncated { what: String, len: usize },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: String },
    #[error("metadata key {key:?} has unknown value type {type_id}")]
    UnknownValueType { key: String, type_id: u32 },
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    #[error("tensor {tensor:?} is invalid: {reason}")]
    InvalidTensor { tensor: String, reason: String },
    #[error(
        "tensor {tensor:?} occupies bytes {start}..{end} but the file has only {len} bytes; it is truncated or corrupt"
    )]
    TensorOutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        len: usize,
    },
    #[error(
        "tensor {tensor:?} has type {type_name}, which this reader cannot dequantize (supported: {})",
        crate::GgmlType::SUPPORTED_NAMES
    )]
    UnsupportedType { tensor: String, type_name: String },
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} holds {found}, but {expected} was expected")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error(
        "architecture {0:?} is not supported; supported are llama, mistral (read as llama) and qwen2"
    )]
    UnsupportedArchitecture(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("tokenizer model {0:?} is not supported; only \"gpt2\" (byte-level BPE) is")]
    UnsupportedTokenizer(String),
    #[error("pre-tokenizer {name:?} is not supported; supported are {supported}")]
    UnsupportedPreTokenizer { name: String, supported: String },
    #[error("cannot build the tokenizer: {0}")]
    Tokenizer(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, GgufError>;
