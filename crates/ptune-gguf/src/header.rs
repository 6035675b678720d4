//! Parsing of the GGUF header: magic, version, metadata and tensor infos.
//!
//! Layout (little-endian): `"GGUF"`, u32 version, u64 tensor count, u64 metadata count, the
//! metadata key/values, the tensor infos, padding to the alignment, then the tensor data.

use std::collections::HashSet;

use crate::cursor::Cursor;
use crate::error::{GgufError, Result};
use crate::ggml_type::GgmlType;
use crate::tensor::TensorInfo;
use crate::value::{Metadata, Value};

/// ggml's limit on tensor rank.
const MAX_DIMS: usize = 4;
/// Arrays may nest; a corrupt file must not recurse without bound.
const MAX_ARRAY_DEPTH: usize = 8;
/// Alignment of the data section when `general.alignment` is absent.
pub(crate) const DEFAULT_ALIGNMENT: u64 = 32;

/// Everything before the tensor data.
pub(crate) struct Header {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_start: usize,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Header> {
    let mut cur = Cursor::new(bytes);
    let version = read_preamble(&mut cur)?;
    let n_tensors = cur.len(24, &|| "the tensor infos".into())?;
    let n_kv = cur.len(13, &|| "the metadata".into())?;
    let mut metadata = Metadata::default();
    for i in 0..n_kv {
        let key = cur.string(&|| format!("the key of metadata entry {i}"))?;
        let value = read_typed_value(&mut cur, &key, 0)?;
        metadata.insert(key, value);
    }
    let tensors = (0..n_tensors)
        .map(|i| read_tensor_info(&mut cur, i))
        .collect::<Result<Vec<_>>>()?;
    let alignment = alignment(&metadata)?;
    let data_start = align_up(cur.position(), alignment);
    let header = Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
    };
    validate_tensors(&header, bytes.len())?;
    Ok(header)
}

/// Magic and version; recognises byte-swapped (big-endian) files to say so.
fn read_preamble(cur: &mut Cursor) -> Result<u32> {
    let magic: [u8; 4] = cur.array(&|| "the magic number".into())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = cur.u32(&|| "the version".into())?;
    match version {
        2 | 3 => Ok(version),
        v if (1..=3).contains(&v.swap_bytes()) => Err(GgufError::BigEndian),
        v => Err(GgufError::UnsupportedVersion(v)),
    }
}

fn read_typed_value(cur: &mut Cursor, key: &str, depth: usize) -> Result<Value> {
    let type_id = cur.u32(&|| format!("the type of metadata {key:?}"))?;
    read_value(cur, key, type_id, depth)
}

fn read_value(cur: &mut Cursor, key: &str, type_id: u32, depth: usize) -> Result<Value> {
    let what = || format!("the value of metadata {key:?}");
    Ok(match type_id {
        0 => Value::U8(cur.array::<1>(&what)?[0]),
        1 => Value::I8(i8::from_le_bytes(cur.array(&what)?)),
        2 => Value::U16(u16::from_le_bytes(cur.array(&what)?)),
        3 => Value::I16(i16::from_le_bytes(cur.array(&what)?)),
        4 => Value::U32(u32::from_le_bytes(cur.array(&what)?)),
        5 => Value::I32(i32::from_le_bytes(cur.array(&what)?)),
        6 => Value::F32(f32::from_le_bytes(cur.array(&what)?)),
        7 => Value::Bool(cur.array::<1>(&what)?[0] != 0),
        8 => Value::String(cur.string(&what)?),
        9 => read_array(cur, key, depth)?,
        10 => Value::U64(u64::from_le_bytes(cur.array(&what)?)),
        11 => Value::I64(i64::from_le_bytes(cur.array(&what)?)),
        12 => Value::F64(f64::from_le_bytes(cur.array(&what)?)),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_string(),
                type_id,
            });
        }
    })
}

fn read_array(cur: &mut Cursor, key: &str, depth: usize) -> Result<Value> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::InvalidHeader(format!(
            "metadata {key:?} nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
        )));
    }
    let elem_type = cur.u32(&|| format!("the element type of metadata {key:?}"))?;
    let n = cur.len(min_value_size(elem_type), &|| {
        format!("the array values of metadata {key:?}")
    })?;
    (0..n)
        .map(|_| read_value(cur, key, elem_type, depth + 1))
        .collect::<Result<Vec<_>>>()
        .map(Value::Array)
}

/// The fewest bytes one value of this type takes, to reject impossible array lengths early.
fn min_value_size(type_id: u32) -> usize {
    match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

fn read_tensor_info(cur: &mut Cursor, index: usize) -> Result<TensorInfo> {
    let name = cur.string(&|| format!("the name of tensor {index}"))?;
    let what = || format!("the info of tensor {name:?}");
    let n_dims = cur.u32(&what)? as usize;
    if n_dims > MAX_DIMS {
        return Err(invalid(
            &name,
            format!("{n_dims} dimensions, ggml allows at most {MAX_DIMS}"),
        ));
    }
    let dims = (0..n_dims)
        .map(|_| cur.u64(&what))
        .collect::<Result<Vec<_>>>()?;
    let ggml_type = GgmlType::from_id(cur.u32(&what)?);
    let offset = cur.u64(&what)?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}

fn alignment(metadata: &Metadata) -> Result<u64> {
    let alignment = metadata
        .get_u64("general.alignment")?
        .unwrap_or(DEFAULT_ALIGNMENT);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufError::InvalidHeader(format!(
            "general.alignment is {alignment}, which is not a power of two"
        )));
    }
    Ok(alignment)
}

fn align_up(pos: usize, alignment: u64) -> usize {
    let a = alignment as usize;
    pos.div_ceil(a).saturating_mul(a)
}

/// Checks names, shapes, block divisibility, alignment and that every tensor lies in the file.
fn validate_tensors(header: &Header, file_len: usize) -> Result<()> {
    let mut seen = HashSet::new();
    for t in &header.tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(invalid(&t.name, "the name appears twice".into()));
        }
        if !t.offset.is_multiple_of(header.alignment) {
            return Err(invalid(
                &t.name,
                format!(
                    "offset {} is not a multiple of the alignment {}",
                    t.offset, header.alignment
                ),
            ));
        }
        let n_bytes = tensor_bytes(t)?;
        let start = (header.data_start as u64).saturating_add(t.offset);
        let end = start.saturating_add(n_bytes.unwrap_or(0));
        if end > file_len as u64 {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                start,
                end,
                len: file_len,
            });
        }
    }
    Ok(())
}

/// The tensor's size in bytes, `None` for an unknown type; errors on overflow or a row that is
/// not a whole number of blocks.
pub(crate) fn tensor_bytes(t: &TensorInfo) -> Result<Option<u64>> {
    let n = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| invalid(&t.name, format!("dimensions {:?} overflow", t.dims)))?;
    let (Some(block), Some(size)) = (t.ggml_type.block_size(), t.ggml_type.type_size()) else {
        return Ok(None);
    };
    let row = t.dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block as u64) {
        return Err(invalid(
            &t.name,
            format!(
                "its rows of {row} values are not whole {} blocks of {block}",
                t.ggml_type
            ),
        ));
    }
    (n / block as u64)
        .checked_mul(size as u64)
        .map(Some)
        .ok_or_else(|| invalid(&t.name, format!("dimensions {:?} overflow", t.dims)))
}

fn invalid(tensor: &str, reason: String) -> GgufError {
    GgufError::InvalidTensor {
        tensor: tensor.to_string(),
        reason,
    }
}
