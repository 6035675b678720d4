//! A llama.cpp GGUF file seen through Hugging Face names, via `ptune-gguf`.

use crate::error::{BackboneError, Result};
use crate::tokenizer::SpecialTokens;
use crate::weights::{HostTensor, TensorSource};
use ptune_gguf::{GgufError, HfView};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// A GGUF checkpoint: tensors dequantized to f32 on read, Q/K rows already un-permuted.
pub struct GgufSource {
    path: PathBuf,
    view: HfView,
}

impl GgufSource {
    pub fn open(path: &Path) -> Result<Self> {
        let view = HfView::open(path).map_err(|e| gguf_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            view,
        })
    }

    /// The `config.json` a Hugging Face checkpoint of this model would carry.
    pub fn hf_config(&self) -> serde_json::Value {
        self.view.config().clone()
    }

    /// The tokenizer stored in the file's metadata, and its special tokens.
    pub fn tokenizer(&self) -> Result<(Tokenizer, SpecialTokens)> {
        let file = self.view.gguf();
        let tokenizer = ptune_gguf::tokenizer(file).map_err(|e| gguf_error(&self.path, e))?;
        let meta = ptune_gguf::tokenizer_metadata(file).map_err(|e| gguf_error(&self.path, e))?;
        let found = SpecialTokens::find(&tokenizer);
        let special = SpecialTokens {
            bos: meta.bos.or(found.bos),
            eos: meta.eos.or(found.eos),
            pad: meta.pad.or(found.pad),
            unk: meta.unk.or(found.unk),
            mask: found.mask,
        };
        Ok((tokenizer, special))
    }
}

impl TensorSource for GgufSource {
    fn names(&self) -> Vec<String> {
        self.view.names()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.view.shape(name)
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        let tensor = self
            .view
            .read(name)
            .map_err(|e| gguf_error(&self.path, e))?;
        Ok(tensor.map(|(shape, data)| HostTensor { shape, data }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

fn gguf_error(path: &Path, e: GgufError) -> BackboneError {
    match e {
        GgufError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            BackboneError::NotFound {
                path: path.to_path_buf(),
            }
        }
        other => BackboneError::Gguf(format!("{}: {other}", path.display())),
    }
}
