//! Errors of building, loading and saving encoders and packs: each one sentence a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong in this crate; no input makes it panic instead.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("invalid prompt encoder config: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not a readable safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("{path}: invalid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("the weights have no tensor `{0}`")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {found:?}, but this encoder needs {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype {dtype}; only F32, F64, F16 and BF16 can be read")]
    Dtype { name: String, dtype: String },
    #[error("the weights hold tensors a {kind} encoder does not have: {names}")]
    Unused { kind: String, names: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "the prompt matrix holds {count} non-finite values (training diverged); nothing was exported"
    )]
    NonFinite { count: usize },
    #[error(
        "the prompt matrix is {found:?}, but it must be [n_prompt, {hidden}] with n_prompt ≥ 1"
    )]
    PromptShape { found: Vec<usize>, hidden: usize },
    #[error("this pack was trained for {trained}, not for {current}")]
    Incompatible { trained: String, current: String },
    #[error("{0}")]
    Data(#[from] ptune_data::Error),
    #[error(
        "template {} has {slots} prompt slots, but the prompt matrix has {rows} rows; each slot takes one row",
        ptune_data::quote(.template)
    )]
    SlotCount {
        template: String,
        slots: usize,
        rows: usize,
    },
    #[error(
        "{path}: peft_type is `{}`, but only P_TUNING adapters can be read",
        ptune_data::short(.found)
    )]
    PeftType { path: PathBuf, found: String },
    #[error("{path}: token_dim is {found}, but the backbone's hidden size is {expected}")]
    TokenDim {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
}

pub type Result<T> = std::result::Result<T, EncoderError>;

impl EncoderError {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        EncoderError::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EncoderError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The reader's errors, as this crate has always named them.
impl From<ptune_host::Error> for EncoderError {
    fn from(e: ptune_host::Error) -> Self {
        match e {
            ptune_host::Error::Io { path, source } => EncoderError::io(path, source),
            ptune_host::Error::Corrupt { path, message } => {
                EncoderError::Safetensors { path, message }
            }
            ptune_host::Error::Dtype { name, dtype } => EncoderError::Dtype { name, dtype },
        }
    }
}
