//! The precision the frozen weights are stored and multiplied in.
//!
//! `Bf16` halves the weights' memory and, where the hardware multiplies bf16 natively (CPUs
//! with AVX512-BF16 or AMX under libtorch, recent GPUs), runs the matmuls 2-3× faster. Only the
//! matrices are lowered: the weights of linear layers, word-embedding tables and LM heads.
//! Activations, norms, biases, position tables, softmax and the prompt encoder stay f32, as
//! under PyTorch's autocast, so results move in the third significant digit, not more.

use burn::tensor::{DType, FloatDType, Tensor, TensorData, bf16};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Whether bf16 weight matmuls run in f32 (see [`widen_bf16_matmuls`]). Process-wide, like the
/// thread pools: it describes the CPU the process runs on.
static WIDEN_BF16: AtomicBool = AtomicBool::new(false);

/// Makes every later bf16 weight matmul widen its rounded operands to f32 and round the product
/// back to bf16: the same values as a bf16 matmul up to summation order. For libtorch on CPUs
/// without AVX-512, whose bf16 matmul falls back to a scalar reference loop 25-60× slower than
/// its f32 one (docs/backends.md); the weights stay bf16 in memory.
pub fn widen_bf16_matmuls(on: bool) {
    WIDEN_BF16.store(on, Ordering::Relaxed);
}

/// Whether [`widen_bf16_matmuls`] is on: what a benchmark records beside its precision.
pub fn bf16_matmuls_widened() -> bool {
    WIDEN_BF16.load(Ordering::Relaxed)
}

/// `x @ w` for rows `x` and a weight `w` that may be held in a lower precision than `x`: `x` is
/// rounded to `w`'s dtype for the matmul and the product returned in `x`'s. In one dtype, the
/// product of [`ptune_kernels::matmul`] (one buffer on flex).
pub fn matmul_weight(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    matmul_widened(x, w, bf16_matmuls_widened())
}

/// [`matmul_weight`], multiplying in `x`'s dtype when `widen` (see [`widen_bf16_matmuls`]).
fn matmul_widened(x: Tensor<2>, w: Tensor<2>, widen: bool) -> Tensor<2> {
    let (dtype, weight_dtype) = (x.dtype(), w.dtype());
    if dtype == weight_dtype {
        return ptune_kernels::matmul(x, w);
    }
    let rounded = x.cast(weight_dtype);
    if widen {
        let product = rounded.cast(dtype).matmul(w.cast(dtype));
        return product.cast(weight_dtype).cast(dtype);
    }
    rounded.matmul(w).cast(dtype)
}

/// Activations back to f32 after a lookup in a lowered table (a no-op for f32 tables).
pub fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.cast(FloatDType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorCreationOptions};

    /// Values of every size between about 0.01 and 100, of both signs: not representable in
    /// bf16, so the rounding of operands and products shows.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let k = (i.wrapping_mul(2654435761) ^ seed) % 1000;
                let sign = if k.is_multiple_of(2) { 1.0 } else { -1.0 };
                sign * 10f32.powf(k as f32 / 250.0 - 2.0) * 1.0137
            })
            .collect()
    }

    #[test]
    fn widened_bf16_matmul_gives_the_bf16_product() {
        let device = Device::flex();
        let x = TensorData::new(values(2 * 5 * 48, 1), [2 * 5, 48]);
        let x = Tensor::<2>::from_data(x, &device);
        let w = Precision::Bf16.data(values(48 * 7, 2), vec![48, 7]);
        let options = TensorCreationOptions::new(device.clone()).with_dtype(DType::BF16);
        let w = Tensor::<2>::from_data(w, options);
        let native = matmul_widened(x.clone(), w.clone(), false);
        let widened = matmul_widened(x.clone(), w.clone(), true);
        assert_eq!(widened.dims(), [2 * 5, 7]);
        assert_eq!(widened.dtype(), DType::F32);
        let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
        let (a, b) = (host(native), host(widened));
        let exact = host(x.matmul(w.cast(DType::F32)));
        for ((a, b), e) in a.into_iter().zip(b).zip(exact) {
            // One bf16 step (2^-7 of the value) for summation order; rounded, not exact.
            assert!((a - b).abs() <= a.abs() / 128.0, "{a} against {b}");
            assert_eq!(b, bf16::from_f32(b).to_f32(), "{b} is a bf16 value");
            assert!(
                (b - e).abs() <= e.abs() / 32.0 + 0.5,
                "{b} against f32's {e}"
            );
        }
    }
}
