//! Errors of loading and running a backbone: each one sentence a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong between a path on disk and a forward pass.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{}invalid config.json: {message}", located(path))]
    Config { path: PathBuf, message: String },
    #[error(
        "unsupported model_type `{0}`: ptune knows bert, roberta, gpt2, llama, mistral and qwen2"
    )]
    UnknownModelType(String),
    #[error("{path}: weights file is corrupt or truncated: {message}")]
    CorruptWeights { path: PathBuf, message: String },
    #[error("checkpoint has no tensor `{name}` (looked in {source_desc})")]
    MissingTensor { name: String, source_desc: String },
    #[error("tensor `{name}` has shape {found:?} but the config implies {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "{source_desc}: tensor `{name}` holds {value} at index {index}; weights must be finite, so the checkpoint is corrupt"
    )]
    NonFinite {
        name: String,
        source_desc: String,
        index: usize,
        value: f32,
    },
    #[error(
        "{source_desc}: tensor `{name}` is never read by the model the config describes ({count} such tensors); the config and the weights disagree, e.g. on the number of layers"
    )]
    UnusedTensor {
        name: String,
        source_desc: String,
        count: usize,
    },
    #[error("tensor `{name}` has dtype {dtype}, which ptune cannot convert to f32")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("{0}")]
    Gguf(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Input(String),
    #[error(
        "could not download `{id}` ({message}); pass a local directory or .gguf file to --model instead"
    )]
    Hub { id: String, message: String },
}

impl BackboneError {
    /// A missing file is [`BackboneError::NotFound`]; other I/O failures keep their message.
    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match e.kind() {
            std::io::ErrorKind::NotFound => BackboneError::NotFound { path },
            _ => BackboneError::Io {
                path,
                message: e.to_string(),
            },
        }
    }
}

impl From<ptune_host::Error> for BackboneError {
    fn from(e: ptune_host::Error) -> Self {
        match e {
            ptune_host::Error::Io { path, source } => BackboneError::io(&path, source),
            ptune_host::Error::Corrupt { path, message } => {
                BackboneError::CorruptWeights { path, message }
            }
            ptune_host::Error::Dtype { name, dtype } => {
                BackboneError::UnsupportedDtype { name, dtype }
            }
        }
    }
}

/// `"{path}: "`, or nothing for a config that did not come from a file.
fn located(path: &std::path::Path) -> String {
    match path.as_os_str().is_empty() {
        true => String::new(),
        false => format!("{}: ", path.display()),
    }
}

pub type Result<T> = std::result::Result<T, BackboneError>;
