//! Metadata values and typed access to them.
//!
//! Writers disagree on integer widths (a count may be `u32` in one file and `i32` or `u64` in the
//! next), so the integer getters accept any integer type that fits the requested one.

use std::collections::BTreeMap;

use crate::error::{GgufError, Result};

/// One metadata value, as stored in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The integer, whatever its stored width; `None` for non-integers.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The number as f64: floats, and integers too (some writers store a float field as an int).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short description for error messages ("u32 7", "array of 3 values"...).
    pub fn describe(&self) -> String {
        match self {
            Value::String(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
            Value::String(s) => format!("the string {s:?}"),
            Value::Array(a) => format!("an array of {} values", a.len()),
            Value::Bool(b) => format!("the bool {b}"),
            other => format!("the number {}", other.as_f64().unwrap_or(f64::NAN)),
        }
    }
}

/// The key/value metadata of a GGUF file, with getters that check types.
///
/// Getters return `Ok(None)` for an absent key and an error for a present key of the wrong type,
/// so a file that spells a field oddly fails loudly instead of falling back to a default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: BTreeMap<String, Value>,
}

impl Metadata {
    pub(crate) fn insert(&mut self, key: String, value: Value) {
        self.entries.insert(key, value);
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// All keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get_int(key, "an unsigned integer")
    }

    pub fn get_u32(&self, key: &str) -> Result<Option<u32>> {
        self.get_int(key, "an integer in the u32 range")
    }

    pub fn get_usize(&self, key: &str) -> Result<Option<usize>> {
        self.get_int(key, "an unsigned integer")
    }

    pub fn get_i64(&self, key: &str) -> Result<Option<i64>> {
        self.get_int(key, "an integer")
    }

    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        Ok(self.get_f64(key)?.map(|v| v as f32))
    }

    pub fn get_f64(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", Value::as_f64)
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", Value::as_bool)
    }

    pub fn get_str(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "a string", Value::as_str)
    }

    pub fn get_array(&self, key: &str) -> Result<Option<&[Value]>> {
        self.typed(key, "an array", Value::as_array)
    }

    /// An array of strings, such as `tokenizer.ggml.tokens`.
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        self.array_of(key, "an array of strings", Value::as_str)
    }

    /// An array of integers of any width, such as `tokenizer.ggml.token_type`.
    pub fn get_i64_array(&self, key: &str) -> Result<Option<Vec<i64>>> {
        self.array_of(key, "an array of integers", |v| {
            v.as_i128().and_then(|i| i64::try_from(i).ok())
        })
    }

    fn get_int<T: TryFrom<i128>>(&self, key: &str, expected: &'static str) -> Result<Option<T>> {
        self.typed(key, expected, |v| {
            v.as_i128().and_then(|i| T::try_from(i).ok())
        })
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        convert: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => convert(v)
                .map(Some)
                .ok_or_else(|| wrong_type(key, expected, v)),
        }
    }

    fn array_of<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        convert: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let items = value
            .as_array()
            .ok_or_else(|| wrong_type(key, expected, value))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                convert(item).ok_or_else(|| wrong_type(&format!("{key}[{i}]"), expected, item))
            })
            .collect::<Result<Vec<T>>>()
            .map(Some)
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected,
        found: found.describe(),
    }
}
