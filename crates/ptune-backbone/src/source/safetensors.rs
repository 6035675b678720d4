//! Memory-mapped safetensors checkpoints, single-file and sharded.

use super::{FloatDtype, floats_from_le};
use crate::error::{BackboneError, Result};
use crate::weights::{HostTensor, TensorSource};
use ::safetensors::{Dtype, SafeTensors, tensor::Metadata};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// One `.safetensors` file: the header is parsed once, tensors are read from the mapping on demand.
pub struct SafetensorsSource {
    path: PathBuf,
    mmap: Mmap,
    header_len: usize,
    metadata: Metadata,
}

impl SafetensorsSource {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        // SAFETY: the file is opened read-only; a concurrent truncation by another process is
        // the only hazard, as for every memory-mapped reader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, e))?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| corrupt(path, e.to_string()))?;
        let data_len = mmap.len() - 8 - header_len;
        if metadata.data_len() > data_len {
            return Err(corrupt(
                path,
                format!(
                    "header describes {} bytes of tensor data but the file holds {data_len}",
                    metadata.data_len()
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            header_len,
            metadata,
        })
    }
}

impl TensorSource for SafetensorsSource {
    fn names(&self) -> Vec<String> {
        self.metadata.tensors().keys().cloned().collect()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.metadata.info(name).map(|i| i.shape.clone())
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        let Some(info) = self.metadata.info(name) else {
            return Ok(None);
        };
        let dtype = match info.dtype {
            Dtype::F32 => FloatDtype::F32,
            Dtype::F16 => FloatDtype::F16,
            Dtype::BF16 => FloatDtype::Bf16,
            Dtype::F64 => FloatDtype::F64,
            other => {
                return Err(BackboneError::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let (start, end) = info.data_offsets;
        let base = 8 + self.header_len;
        let bytes = &self.mmap[base + start..base + end];
        let expected = info.shape.iter().product::<usize>() * dtype.size();
        if bytes.len() != expected {
            return Err(corrupt(
                &self.path,
                format!(
                    "tensor `{name}` holds {} bytes, expected {expected}",
                    bytes.len()
                ),
            ));
        }
        Ok(Some(HostTensor {
            shape: info.shape.clone(),
            data: floats_from_le(bytes, dtype),
        }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A checkpoint split over shards listed by `model.safetensors.index.json`.
pub struct ShardedSafetensors {
    index_path: PathBuf,
    shards: Vec<SafetensorsSource>,
    shard_of: BTreeMap<String, usize>,
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl ShardedSafetensors {
    pub fn open(index_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index_path).map_err(|e| io_error(index_path, e))?;
        let index: ShardIndex = serde_json::from_str(&text)
            .map_err(|e| corrupt(index_path, format!("invalid shard index: {e}")))?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let mut files: Vec<&String> = index.weight_map.values().collect();
        files.sort();
        files.dedup();
        let shards = files
            .iter()
            .map(|f| SafetensorsSource::open(&dir.join(f)))
            .collect::<Result<Vec<_>>>()?;
        let shard_of = index
            .weight_map
            .iter()
            .map(|(name, file)| {
                (
                    name.clone(),
                    files.binary_search(&file).expect("listed file"),
                )
            })
            .collect();
        Ok(Self {
            index_path: index_path.to_path_buf(),
            shards,
            shard_of,
        })
    }
}

impl TensorSource for ShardedSafetensors {
    fn names(&self) -> Vec<String> {
        self.shard_of.keys().cloned().collect()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.shards[*self.shard_of.get(name)?].shape(name)
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        match self.shard_of.get(name) {
            Some(&i) => self.shards[i].read(name),
            None => Ok(None),
        }
    }

    fn describe(&self) -> String {
        self.index_path.display().to_string()
    }
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> BackboneError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BackboneError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        BackboneError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

pub(crate) fn corrupt(path: &Path, message: String) -> BackboneError {
    BackboneError::CorruptWeights {
        path: path.to_path_buf(),
        message,
    }
}
