//! Files: safetensors in and out, and writes that leave either the old file or the new one,
//! never a half-written one.

use crate::error::{EncoderError, Result};
use crate::tensors::{HostTensor, NamedTensors};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A safetensors file read into host f32 tensors, with its `__metadata__` strings.
pub struct SafetensorsFile {
    pub tensors: NamedTensors,
    pub metadata: HashMap<String, String>,
}

/// Reads every tensor of a safetensors file as f32 (F32, F64, F16 and BF16 are converted).
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile> {
    let bytes = read_bytes(path)?;
    parse_safetensors(path, &bytes)
}

pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| EncoderError::io(path, e))
}

pub(crate) fn parse_safetensors(path: &Path, bytes: &[u8]) -> Result<SafetensorsFile> {
    let bad = |e: safetensors::SafeTensorError| EncoderError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut tensors = NamedTensors::new();
    for (name, view) in file.iter() {
        let data = to_f32(name, &view)?;
        tensors.insert(
            name.to_string(),
            HostTensor::new(view.shape().to_vec(), data),
        );
    }
    Ok(SafetensorsFile { tensors, metadata })
}

fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let b = view.data();
    let le2 = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]);
    Ok(match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(le2(c)).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_bits(le2(c)).to_f32())
            .collect(),
        other => {
            return Err(EncoderError::Dtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

/// The bytes of a safetensors file holding `tensors` as F32, with optional metadata.
pub(crate) fn safetensors_bytes(
    tensors: &NamedTensors,
    metadata: Option<HashMap<String, String>>,
    path: &Path,
) -> Result<Vec<u8>> {
    let raw: Vec<(&String, Vec<u8>, &HostTensor)> = tensors
        .iter()
        .map(|(name, t)| {
            (
                name,
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t,
            )
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, bytes, t)| {
            TensorView::new(Dtype::F32, t.shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>();
    let bad = |e: safetensors::SafeTensorError| EncoderError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    safetensors::serialize(views.map_err(bad)?, metadata).map_err(bad)
}

/// Writes `tensors` (F32) to `path` atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &NamedTensors,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = safetensors_bytes(tensors, metadata, path)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        EncoderError::io(path, e)
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `dir/.name.tmp-<pid>`: same directory (so rename is atomic), hidden, unique per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Creates `dir` (and parents) if needed.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| EncoderError::io(dir, e))
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses the JSON file at `path` into `T`, after a UTF-8 byte order mark if it has one.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_bytes(path)?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    serde_json::from_slice(text).map_err(|e| EncoderError::Json {
        path: path.to_path_buf(),
        message: ptune_data::short_message(&e.to_string()).into_owned(),
    })
}

/// Pretty JSON bytes of `value`, newline-terminated.
pub(crate) fn json_bytes<T: serde::Serialize>(value: &T, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| EncoderError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}
