//! PyTorch `pytorch_model.bin` checkpoints (zip or legacy pickle), via burn's `pytorch-reader`.

use super::safetensors::corrupt;
use crate::error::{BackboneError, Result};
use crate::weights::{HostTensor, TensorSource};
use ptune_host::FloatDtype;
use pytorch_reader::{DType, PytorchError, PytorchReader};
use std::path::{Path, PathBuf};

/// A PyTorch state dict; only its metadata is parsed on open, tensors are read on demand.
pub struct PickleSource {
    path: PathBuf,
    reader: PytorchReader,
}

impl PickleSource {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(BackboneError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let reader = PytorchReader::new(path).map_err(|e| match e {
            PytorchError::Io(io) => BackboneError::io(path, io),
            other => corrupt(path, other.to_string()),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }
}

impl TensorSource for PickleSource {
    fn names(&self) -> Vec<String> {
        self.reader.keys()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.reader.get(name).map(|t| t.shape().to_vec())
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        let Some(tensor) = self.reader.get(name) else {
            return Ok(None);
        };
        let dtype = match tensor.dtype() {
            DType::F32 => FloatDtype::F32,
            DType::F16 => FloatDtype::F16,
            DType::BF16 => FloatDtype::Bf16,
            DType::F64 => FloatDtype::F64,
            other => {
                return Err(BackboneError::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let bytes = tensor
            .read()
            .map_err(|e| corrupt(&self.path, e.to_string()))?;
        Ok(Some(HostTensor {
            shape: tensor.shape().to_vec(),
            data: dtype.decode(&bytes),
        }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
