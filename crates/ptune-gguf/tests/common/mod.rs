//! Shared test helpers: fixture paths, safetensors reading, and a byte-level GGUF builder for
//! files that gguf-py refuses to write (bad types, broken offsets).

#![allow(dead_code)]

use std::path::PathBuf;

use ptune_gguf::Value;
use safetensors::{Dtype, SafeTensors};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(name)
}

/// The tiny Llama GGUF shared with ptune-backbone's tests.
pub fn llama_fixture(name: &str) -> PathBuf {
    crate_dir()
        .join("../ptune-backbone/tests/fixtures/llama_gguf")
        .join(name)
}

/// Every F32 tensor of a safetensors file, as (shape, values).
pub fn read_safetensors(path: &PathBuf) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == Dtype::F32)
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Index of the first element where two f32 slices differ bitwise (NaN-safe), if any.
pub fn first_difference(a: &[f32], b: &[f32]) -> Option<(usize, f32, f32)> {
    a.iter()
        .zip(b)
        .enumerate()
        .find(|(_, (x, y))| x.to_bits() != y.to_bits())
        .map(|(i, (x, y))| (i, *x, *y))
}

/// Writes GGUF bytes by hand.
pub struct GgufBuilder {
    pub version: u32,
    pub alignment: usize,
    kvs: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Default for GgufBuilder {
    fn default() -> Self {
        Self {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            n_kv: 0,
            infos: Vec::new(),
            n_tensors: 0,
            data: Vec::new(),
        }
    }
}

impl GgufBuilder {
    /// A key with a raw value of GGUF value type `type_id`.
    pub fn kv_raw(mut self, key: &str, type_id: u32, value: &[u8]) -> Self {
        string(&mut self.kvs, key);
        self.kvs.extend(type_id.to_le_bytes());
        self.kvs.extend(value);
        self.n_kv += 1;
        self
    }

    /// Any metadata value, e.g. one copied from another file.
    pub fn kv_value(self, key: &str, value: &Value) -> Self {
        let mut v = Vec::new();
        let type_id = encode(&mut v, value);
        self.kv_raw(key, type_id, &v)
    }

    pub fn kv_str(self, key: &str, value: &str) -> Self {
        let mut v = Vec::new();
        string(&mut v, value);
        self.kv_raw(key, 8, &v)
    }

    pub fn kv_u32(self, key: &str, value: u32) -> Self {
        self.kv_raw(key, 4, &value.to_le_bytes())
    }

    pub fn kv_f32(self, key: &str, value: f32) -> Self {
        self.kv_raw(key, 6, &value.to_le_bytes())
    }

    pub fn kv_str_array(self, key: &str, values: &[&str]) -> Self {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((values.len() as u64).to_le_bytes());
        for s in values {
            string(&mut v, s);
        }
        self.kv_raw(key, 9, &v)
    }

    /// A tensor with ggml dims (fastest first), type id and raw data, placed at the next
    /// aligned offset.
    pub fn tensor(self, name: &str, dims: &[u64], type_id: u32, data: &[u8]) -> Self {
        let offset = self.data.len().div_ceil(self.alignment) * self.alignment;
        self.tensor_at(name, dims, type_id, offset as u64, data)
    }

    /// Like `tensor` but with an explicit offset, to write broken files.
    pub fn tensor_at(
        mut self,
        name: &str,
        dims: &[u64],
        type_id: u32,
        offset: u64,
        data: &[u8],
    ) -> Self {
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(type_id.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        let start = offset as usize;
        if data.is_empty() {
            return self;
        }
        if self.data.len() < start + data.len() {
            self.data.resize(start + data.len(), 0);
        }
        self.data[start..start + data.len()].copy_from_slice(data);
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kvs);
        out.extend(&self.infos);
        let padded = out.len().div_ceil(self.alignment) * self.alignment;
        out.resize(padded, 0);
        out.extend(&self.data);
        out
    }
}

/// f32 values as little-endian bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Appends `value`'s GGUF encoding (without its type) and returns its value type id.
fn encode(out: &mut Vec<u8>, value: &Value) -> u32 {
    match value {
        Value::U8(v) => (out.push(*v), 0).1,
        Value::I8(v) => (out.extend(v.to_le_bytes()), 1).1,
        Value::U16(v) => (out.extend(v.to_le_bytes()), 2).1,
        Value::I16(v) => (out.extend(v.to_le_bytes()), 3).1,
        Value::U32(v) => (out.extend(v.to_le_bytes()), 4).1,
        Value::I32(v) => (out.extend(v.to_le_bytes()), 5).1,
        Value::F32(v) => (out.extend(v.to_le_bytes()), 6).1,
        Value::Bool(v) => (out.push(u8::from(*v)), 7).1,
        Value::String(s) => (string(out, s), 8).1,
        Value::U64(v) => (out.extend(v.to_le_bytes()), 10).1,
        Value::I64(v) => (out.extend(v.to_le_bytes()), 11).1,
        Value::F64(v) => (out.extend(v.to_le_bytes()), 12).1,
        Value::Array(items) => {
            let mut body = Vec::new();
            let elem_type = items
                .iter()
                .map(|i| encode(&mut body, i))
                .last()
                .unwrap_or(4);
            out.extend(elem_type.to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            out.extend(body);
            9
        }
    }
}
