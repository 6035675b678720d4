//! Files: safetensors in and out, and writes that leave either the old file or the new one,
//! never a half-written one.

use crate::error::{EncoderError, Result};
use crate::tensors::{HostTensor, NamedTensors};
use ptune_host::Safetensors;
use safetensors::{Dtype, tensor::TensorView};
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
    whole(&Safetensors::open(path)?)
}

pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| EncoderError::io(path, e))
}

/// [`read_safetensors`] of a file already read into `bytes`.
pub(crate) fn parse_safetensors(path: &Path, bytes: &[u8]) -> Result<SafetensorsFile> {
    whole(&Safetensors::from_bytes(path, bytes)?)
}

fn whole<B: AsRef<[u8]>>(file: &Safetensors<B>) -> Result<SafetensorsFile> {
    Ok(SafetensorsFile {
        tensors: file.read_all()?,
        metadata: file.metadata(),
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
