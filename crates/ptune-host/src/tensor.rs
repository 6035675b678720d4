//! Row-major f32 tensors in host memory: the common currency between checkpoint files, burn
//! modules and reference fixtures.

use std::collections::BTreeMap;

/// A row-major f32 tensor, in the shape its checkpoint gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tensors by name, sorted, as a PyTorch `state_dict` would hold them.
pub type NamedTensors = BTreeMap<String, HostTensor>;

impl HostTensor {
    /// A tensor of `shape`; `data.len()` must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }

    /// The transpose of a matrix (PyTorch's `nn.Linear` `[out, in]` ↔ burn's `[in, out]`).
    pub fn transposed(&self) -> Self {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        Self::new(vec![cols, rows], transpose(&self.data, rows, cols))
    }

    /// The largest absolute element-wise difference to `other` (infinite if shapes differ).
    pub fn max_abs_diff(&self, other: &HostTensor) -> f32 {
        if self.shape != other.shape {
            return f32::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}

/// Row-major transpose of a `[rows, cols]` matrix.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}
