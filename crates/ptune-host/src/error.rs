//! Errors of reading checkpoint files; each crate maps them onto its own one-sentence errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable safetensors file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("tensor `{name}` has dtype {dtype}; only F32, F64, F16 and BF16 can be read")]
    Dtype { name: String, dtype: String },
}

pub type Result<T> = std::result::Result<T, Error>;
