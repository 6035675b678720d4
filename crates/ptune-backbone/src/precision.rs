//! The precision the frozen weights are stored and multiplied in.
//!
//! `Bf16` halves the weights' memory and, where the hardware multiplies bf16 natively (CPUs
//! with AVX512-BF16 or AMX under libtorch, recent GPUs), runs the matmuls 2-3× faster. Only the
//! matrices are lowered: the weights of linear layers, word-embedding tables and LM heads.
//! Activations, norms, biases, position tables, softmax and the prompt encoder stay f32, as
//! under PyTorch's autocast, so results move in the third significant digit, not more.

use burn::tensor::{DType, FloatDType, Tensor, TensorData, bf16};

/// How the backbone's weight matrices are held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Every weight in f32: results match transformers in f32 to 1e-4.
    #[default]
    F32,
    /// Weight matrices in bfloat16, multiplied in bf16 with f32 accumulation.
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::Bf16];

    /// The name `--precision` takes and JSON records.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// A host matrix in this precision (rounded to nearest even, as PyTorch's `.to()`).
    pub fn data(self, values: Vec<f32>, shape: Vec<usize>) -> TensorData {
        match self {
            Precision::F32 => TensorData::new(values, shape),
            Precision::Bf16 => {
                let lowered: Vec<bf16> = values.into_iter().map(bf16::from_f32).collect();
                TensorData::new(lowered, shape)
            }
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown precision `{s}`: f32 or bf16"))
    }
}

/// `x @ w` for a weight `w` that may be held in a lower precision than the activations `x`:
/// `x` is rounded to `w`'s dtype for the matmul and the product returned in `x`'s.
pub fn matmul_weight<const D: usize>(x: Tensor<D>, w: Tensor<D>) -> Tensor<D> {
    let (dtype, weight_dtype) = (x.dtype(), w.dtype());
    if dtype == weight_dtype {
        return x.matmul(w);
    }
    x.cast(weight_dtype).matmul(w).cast(dtype)
}

/// Activations back to f32 after a lookup in a lowered table (a no-op for f32 tables).
pub fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.cast(FloatDType::F32)
}
