//! `ModelBundle::open`: config, weights and tokenizer from a directory, a `.gguf` file or a hub id.

use crate::backbone::Backbone;
use crate::config::ModelConfig;
use crate::error::{BackboneError, Result};
use crate::precision::Precision;
use crate::tokenizer::{SpecialTokens, load_dir};
use crate::weights::TensorSource;
use crate::{hub, source};
use burn::tensor::Device;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Everything needed to build a backbone and feed it text.
pub struct ModelBundle {
    /// Where the files came from (directory or `.gguf` file).
    pub path: PathBuf,
    pub config: ModelConfig,
    pub weights: Box<dyn TensorSource>,
    pub tokenizer: Tokenizer,
    pub special: SpecialTokens,
}

impl ModelBundle {
    /// Opens a local directory or `.gguf` file; anything else that reads as a hub id is fetched.
    pub fn open(path_or_id: &str) -> Result<Self> {
        let path = Path::new(path_or_id);
        if path.is_dir() {
            Self::open_dir(path)
        } else if path.is_file() {
            Self::open_gguf(path)
        } else if let Some(kind) = special_file(path) {
            Err(BackboneError::Input(format!(
                "{}: {kind}, not a model directory, a .gguf file or a hub id",
                path.display()
            )))
        } else if hub::looks_like_id(path_or_id) {
            Self::open_dir(&hub::download(path_or_id)?)
        } else {
            Err(BackboneError::NotFound {
                path: path.to_path_buf(),
            })
        }
    }

    fn open_dir(dir: &Path) -> Result<Self> {
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let weights = source::open_dir(dir)?;
        let tokenizer = load_dir(dir, &config)?;
        let special = SpecialTokens::find(&tokenizer);
        check_token_ids(dir, &tokenizer, &special, config.vocab_size())?;
        Ok(Self {
            path: dir.to_path_buf(),
            special,
            config,
            weights,
            tokenizer,
        })
    }

    fn open_gguf(file: &Path) -> Result<Self> {
        let gguf = source::GgufSource::open(file)?;
        let config = ModelConfig::from_value(gguf.hf_config()).map_err(|e| match e {
            BackboneError::Config { message, .. } => BackboneError::Gguf(format!(
                "{}: invalid model metadata: {message}",
                file.display()
            )),
            other => other,
        })?;
        let (tokenizer, special) = gguf.tokenizer()?;
        check_token_ids(file, &tokenizer, &special, config.vocab_size())?;
        Ok(Self {
            path: file.to_path_buf(),
            config,
            weights: Box::new(gguf),
            tokenizer,
            special,
        })
    }

    /// Builds the frozen backbone on `device`, in f32.
    pub fn backbone(&self, device: &Device) -> Result<Backbone> {
        self.backbone_as(device, Precision::F32)
    }

    /// Builds the frozen backbone on `device` with its weight matrices in `precision`.
    pub fn backbone_as(&self, device: &Device, precision: Precision) -> Result<Backbone> {
        Backbone::load_as(&self.config, self.weights.as_ref(), device, precision)
    }

    /// The architecture a prompt pack records: `bert`, `roberta`, `gpt2`, `llama` or `qwen2`.
    pub fn architecture(&self) -> String {
        match &self.config {
            ModelConfig::Bert(c) => format!("{:?}", c.flavor).to_lowercase(),
            ModelConfig::Gpt2(_) => "gpt2".into(),
            ModelConfig::Llama(c) if c.qwen2 => "qwen2".into(),
            ModelConfig::Llama(_) => "llama".into(),
        }
    }

    /// SHA-256 of the vocabulary (`id\ttoken\n` in id order): prompts trained under one
    /// tokenizer mean nothing under another.
    pub fn vocab_sha256(&self) -> String {
        let mut vocab: Vec<(String, u32)> = self.tokenizer.get_vocab(true).into_iter().collect();
        vocab.sort_by_key(|(_, id)| *id);
        let mut hasher = Sha256::new();
        for (token, id) in vocab {
            hasher.update(format!("{id}\t{token}\n"));
        }
        format!("{:x}", hasher.finalize())
    }
}

/// What a path that exists but is neither a file nor a directory is (`/dev/null`, a FIFO).
fn special_file(path: &Path) -> Option<&'static str> {
    let kind = std::fs::metadata(path).ok()?.file_type();
    if kind.is_file() || kind.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

/// Every id the tokenizer can produce (its vocabulary, the special tokens the code uses, those
/// its template adds) must be a row of the embedding table: a lookup past the end is garbage
/// or a panic, and only shows when a batch happens to contain that id.
fn check_token_ids(
    path: &Path,
    tokenizer: &Tokenizer,
    special: &SpecialTokens,
    rows: usize,
) -> Result<()> {
    let beyond = |id: u32, what: String| {
        Err(BackboneError::Tokenizer(format!(
            "{}: {what} has id {id}, but the model's embedding table has only {rows} rows (vocab_size)",
            path.display()
        )))
    };
    let largest = tokenizer
        .get_vocab(true)
        .into_iter()
        .max_by_key(|(_, id)| *id);
    if let Some((token, id)) = largest.filter(|(_, id)| *id as usize >= rows) {
        return beyond(id, format!("its token `{token}`"));
    }
    for (name, id) in special.named() {
        if let Some(id) = id.filter(|&id| id as usize >= rows) {
            return beyond(id, format!("the {name} token"));
        }
    }
    let added = tokenizer
        .encode("a", true)
        .map_err(|e| BackboneError::Tokenizer(format!("{}: {e}", path.display())))?;
    match added.get_ids().iter().find(|&&id| id as usize >= rows) {
        Some(&id) => beyond(id, "a token its template adds".into()),
        None => Ok(()),
    }
}
