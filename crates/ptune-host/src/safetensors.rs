//! Safetensors files, checked once on open: tensors are read from the bytes (usually a memory
//! mapping, so a model takes only what it uses) and converted to f32 on demand.

use crate::dtype::FloatDtype;
use crate::error::{Error, Result};
use crate::tensor::{HostTensor, NamedTensors};
use ::safetensors::tensor::{Metadata, TensorInfo};
use ::safetensors::{Dtype, SafeTensors};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A safetensors file whose header has been parsed and checked against its length.
pub struct Safetensors<B = Mmap> {
    path: PathBuf,
    bytes: B,
    header_len: usize,
    metadata: Metadata,
}

impl Safetensors {
    /// Maps the file at `path` read-only.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the file is opened read-only; a concurrent truncation by another process is
        // the only hazard, as for every memory-mapped reader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_bytes(path, mmap)
    }
}

impl<B: AsRef<[u8]>> Safetensors<B> {
    /// Parses `bytes`, the contents of the file at `path` (which errors name).
    pub fn from_bytes(path: &Path, bytes: B) -> Result<Self> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(bytes.as_ref()).map_err(|e| corrupt(path, e.to_string()))?;
        let data_len = bytes.as_ref().len() - 8 - header_len;
        if metadata.data_len() > data_len {
            let described = metadata.data_len();
            let message = format!(
                "header describes {described} bytes of tensor data but the file holds {data_len}"
            );
            return Err(corrupt(path, message));
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            header_len,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> Vec<String> {
        self.metadata.tensors().into_keys().collect()
    }

    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.metadata.info(name).map(|i| i.shape.clone())
    }

    /// The file's `__metadata__` strings.
    pub fn metadata(&self) -> HashMap<String, String> {
        self.metadata.metadata().clone().unwrap_or_default()
    }

    /// Reads and converts one tensor; an absent name is `Ok(None)`.
    pub fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        let info = self.metadata.info(name);
        info.map(|info| self.convert(name, info)).transpose()
    }

    /// Reads and converts every tensor.
    pub fn read_all(&self) -> Result<NamedTensors> {
        let tensors = self.metadata.tensors();
        let convert =
            |(name, info): (String, &TensorInfo)| Ok((name.clone(), self.convert(&name, info)?));
        tensors.into_iter().map(convert).collect()
    }

    fn convert(&self, name: &str, info: &TensorInfo) -> Result<HostTensor> {
        let dtype = match info.dtype {
            Dtype::F32 => FloatDtype::F32,
            Dtype::F16 => FloatDtype::F16,
            Dtype::BF16 => FloatDtype::Bf16,
            Dtype::F64 => FloatDtype::F64,
            other => {
                return Err(Error::Dtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let (start, end) = info.data_offsets;
        let base = 8 + self.header_len;
        let bytes = &self.bytes.as_ref()[base + start..base + end];
        let expected = info.shape.iter().product::<usize>() * dtype.size();
        if bytes.len() != expected {
            let message = format!(
                "tensor `{name}` holds {} bytes, expected {expected}",
                bytes.len()
            );
            return Err(corrupt(&self.path, message));
        }
        Ok(HostTensor::new(info.shape.clone(), dtype.decode(bytes)))
    }
}

fn corrupt(path: &Path, message: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message,
    }
}
