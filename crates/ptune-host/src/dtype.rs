//! Little-endian float bytes, as checkpoints store them, decoded to f32.

/// The float encodings checkpoints use for weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F32,
    F16,
    Bf16,
    F64,
}

impl FloatDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatDtype::F16 | FloatDtype::Bf16 => 2,
            FloatDtype::F32 => 4,
            FloatDtype::F64 => 8,
        }
    }

    /// Decodes whole little-endian elements of this dtype.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        let elements = bytes.chunks_exact(self.size());
        match self {
            FloatDtype::F32 => elements.map(f32_le).collect(),
            FloatDtype::F16 => elements.map(f16_le).collect(),
            FloatDtype::Bf16 => elements.map(bf16_le).collect(),
            FloatDtype::F64 => elements
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
                .collect(),
        }
    }
}

/// The f32 in the first 4 bytes of `b`.
pub fn f32_le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The f16 in the first 2 bytes of `b`, widened.
pub fn f16_le(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// The bf16 in the first 2 bytes of `b`, widened: a bf16 is the top half of an f32.
pub fn bf16_le(b: &[u8]) -> f32 {
    f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_decodes_its_bytes() {
        let x = [1.5f32, -2.25];
        let f32s: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f64s: Vec<u8> = x.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect();
        let f16s: Vec<u8> = x
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = x
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(FloatDtype::F32.decode(&f32s), x);
        assert_eq!(FloatDtype::F64.decode(&f64s), x);
        assert_eq!(FloatDtype::F16.decode(&f16s), x);
        assert_eq!(FloatDtype::Bf16.decode(&bf16s), x);
    }
}
