//! Memory-mapped safetensors checkpoints, single-file and sharded.

use crate::error::{BackboneError, Result};
use crate::weights::{HostTensor, TensorSource};
use ptune_host::Safetensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `.safetensors` file: the header is parsed once, tensors are read from the mapping on demand.
pub struct SafetensorsSource(Safetensors);

impl SafetensorsSource {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self(Safetensors::open(path)?))
    }
}

impl TensorSource for SafetensorsSource {
    fn names(&self) -> Vec<String> {
        self.0.names()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.0.shape(name)
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        Ok(self.0.read(name)?)
    }

    fn describe(&self) -> String {
        self.0.path().display().to_string()
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
        let text =
            std::fs::read_to_string(index_path).map_err(|e| BackboneError::io(index_path, e))?;
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

pub(crate) fn corrupt(path: &Path, message: String) -> BackboneError {
    BackboneError::CorruptWeights {
        path: path.to_path_buf(),
        message,
    }
}
