//! An open GGUF file: memory-mapped bytes, parsed header, and tensor reads.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use crate::dequant::dequantize;
use crate::error::{GgufError, Result};
use crate::header::{self, Header};
use crate::tensor::TensorInfo;
use crate::value::Metadata;

/// The file's bytes: mapped for files on disk, owned for files built in memory.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file. Tensor data stays in the mapping until read, so opening is cheap and a
/// caller that needs a few tensors pays only for those.
pub struct GgufFile {
    bytes: Bytes,
    source: String,
    header: Header,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("source", &self.source)
            .field("version", &self.header.version)
            .field("tensors", &self.header.tensors.len())
            .field("metadata", &self.header.metadata.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and parses the file at `path`; fails on anything malformed (see [`GgufError`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; like every reader of model files we assume the file
            // is not truncated or rewritten while open.
            Bytes::Mapped(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        Self::parse(bytes, path.display().to_string())
    }

    /// Parses a GGUF image held in memory (tests, downloads, embedded files).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(Bytes::Owned(bytes), "<memory>".to_string())
    }

    fn parse(bytes: Bytes, source: String) -> Result<Self> {
        let header = header::parse(&bytes)?;
        let by_name = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Self {
            bytes,
            source,
            header,
            by_name,
        })
    }

    /// Where the file came from (its path), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// Alignment of the data section (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Result<&str> {
        self.metadata()
            .get_str("general.architecture")?
            .ok_or_else(|| GgufError::MissingKey {
                key: "general.architecture".into(),
            })
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// Every tensor name, in file order.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.tensors().iter().map(|t| t.name.as_str()).collect()
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.header.tensors[i])
    }

    /// The tensor's raw bytes as stored (quantized blocks for quantized types); `Ok(None)` if
    /// absent, an error for a type whose size is unknown.
    pub fn tensor_data(&self, name: &str) -> Result<Option<&[u8]>> {
        let Some(info) = self.tensor_info(name) else {
            return Ok(None);
        };
        let n_bytes = header::tensor_bytes(info)?.ok_or_else(|| unsupported(info))?;
        // Bounds were checked at open, so these conversions and the slice cannot fail.
        let start = self.header.data_start + info.offset as usize;
        Ok(Some(&self.bytes[start..start + n_bytes as usize]))
    }

    /// Reads a tensor dequantized to f32, with its shape in PyTorch order; `Ok(None)` if absent.
    pub fn read_f32(&self, name: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let Some(info) = self.tensor_info(name) else {
            return Ok(None);
        };
        if !info.ggml_type.is_supported() {
            return Err(unsupported(info));
        }
        let bytes = self.tensor_data(name)?.unwrap_or_default();
        let mut out = vec![0f32; info.n_elements()];
        dequantize(info.ggml_type, bytes, &mut out);
        Ok(Some((info.shape(), out)))
    }
}

fn unsupported(info: &TensorInfo) -> GgufError {
    GgufError::UnsupportedType {
        tensor: info.name.clone(),
        type_name: info.ggml_type.name(),
    }
}
