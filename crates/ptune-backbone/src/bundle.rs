//! `ModelBundle::open`: config, weights and tokenizer from a directory, a `.gguf` file or a hub id.

use crate::backbone::Backbone;
use crate::config::ModelConfig;
use crate::error::{BackboneError, Result};
use crate::precision::Precision;
use crate::tokenizer::{SpecialTokens, load_dir};
use crate::weights::TensorSource;
use crate::{hub, source};
use burn::tensor::Device;
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
        Ok(Self {
            path: dir.to_path_buf(),
            special: SpecialTokens::find(&tokenizer),
            config,
            weights,
            tokenizer,
        })
    }

    fn open_gguf(file: &Path) -> Result<Self> {
        let gguf = source::GgufSource::open(file)?;
        let config = ModelConfig::from_value(gguf.hf_config())?;
        let (tokenizer, special) = gguf.tokenizer()?;
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
}
